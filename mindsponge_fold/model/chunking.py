"""Inference chunking: evaluate a row-wise computation a few rows at a time so that its large intermediates
(attention logits [rows, H, Q, K], transition activations, outer products) exist for one chunk only.

Memory then grows like the model's activations (N_seq x N_res x c, N_res^2 x c) instead of the attention logits
(N_seq x N_res^2 x H, N_res^3 x H). AlphaFold does the same at inference with ``subbatch_size``.

Setting (``chunking.chunk_size`` in the config, carried by ``ModelContext.chunk_size``):

* ``0``: off (every op sees all rows at once).
* ``k > 0``: every chunked op processes ``k`` rows per chunk.
* ``null`` (:data:`AUTO`): chosen per op from the static shapes, i.e. from N_res and N_seq: the largest power of
  two of rows whose intermediate stays within :data:`AUTO_BUDGET_BYTES` (:func:`rows_per_chunk`). Small inputs
  are then not chunked at all; at N_res = 1024 triangle attention runs 2 rows and extra-MSA row attention 1 row
  per chunk. The budget is small because MindSpore's CPU graph keeps several copies of a chunk's intermediates
  alive (logits, biased, clipped, softmax, ...): measured at N_res = 128 with 5120 extra rows, 32-row chunks kept
  the 2-block network at 13.2 GiB peak where 256-row chunks went past 16 GiB.

Chunks run in a graph-mode ``while`` loop over dynamically gathered rows (:func:`map_rows`): compile time does not
grow with the number of chunks and the loop body's buffers are reused from chunk to chunk (statically unrolled
chunks did not lower the peak memory on MindSpore 2.10 CPU: all chunk intermediates stayed alive). Each chunk's
result is written into the output with ``tensor_scatter_update`` (replacement, not accumulation, which stays
correct when the compiled graph is re-executed). The last chunk repeats row N-1 when the rows do not divide evenly;
the repeated rows are identical, so the result is exact. Chunking is never used in training mode.
"""
from __future__ import annotations

import mindspore as ms
from mindspore import ops

AUTO = -1                          # ModelContext.chunk_size for config ``chunk_size: null``
AUTO_BUDGET_BYTES = 32 * 2 ** 20   # largest intermediate of one chunk under the automatic rule (see below)
ITEM_BYTES = 4


def setting_from_config(value) -> int:
    """Config ``chunking.chunk_size`` (null | 0 | positive int) -> ModelContext.chunk_size."""
    if value is None:
        return AUTO
    value = int(value)
    if value < 0:
        raise ValueError(f"chunking.chunk_size must be null, 0 or a positive number of rows, got {value}")
    return value


def rows_per_chunk(setting: int, num_rows: int, row_elems: int) -> int:
    """Rows per chunk for an op over ``num_rows`` rows whose largest intermediate has ``row_elems`` elements per row.
    Returns ``num_rows`` (no chunking) when chunking is off or one chunk covers everything."""
    if setting == 0:
        return num_rows
    if setting > 0:
        return min(num_rows, setting)
    rows = max(1, AUTO_BUDGET_BYTES // max(1, row_elems * ITEM_BYTES))
    rows = 1 << (rows.bit_length() - 1)            # power of two: chunk sizes stay stable across lengths
    return min(num_rows, rows)


def map_rows(fn, chunk, sliced, shared, out_tail, out_dtype):
    """``fn(*sliced, *shared)`` for a row-wise ``fn``, evaluated ``chunk`` rows at a time.

    ``sliced``: tuple of Tensors sharing their leading (row) axis; ``shared``: extra arguments passed whole;
    ``out_tail``: ``fn``'s output shape after the row axis; returns [rows] + out_tail in ``out_dtype``."""
    n = sliced[0].shape[0]
    if chunk >= n:
        return fn(*sliced, *shared).astype(out_dtype)
    num_chunks = (n + chunk - 1) // chunk
    offsets = ops.arange(0, chunk, 1, dtype=ms.int32)
    out = ops.zeros((n,) + tuple(out_tail), out_dtype)
    j = ops.zeros((), ms.int32)
    while j < num_chunks:
        rows = ops.minimum(j * chunk + offsets, n - 1)
        parts = ()
        for a in sliced:
            parts = parts + (ops.gather(a, rows, 0),)
        y = fn(*parts, *shared)
        out = ops.tensor_scatter_update(out, rows.reshape(chunk, 1), y.astype(out_dtype))
        j = j + 1
    return out
