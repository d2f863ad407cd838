"""Inference chunking: evaluate a row-wise computation a few rows at a time so that its large intermediates
(attention logits [rows, H, Q, K], transition activations, outer products) exist for one chunk only.

Memory then grows like the model's activations (N_seq x N_res x c, N_res^2 x c) instead of the attention logits
(N_seq x N_res^2 x H, N_res^3 x H). AlphaFold does the same at inference with ``subbatch_size``.

Setting (``chunking.chunk_size`` in the config, carried by ``ModelContext.chunk_size``):

* ``0``: off (every op sees all rows at once).
* ``k > 0``: every chunked op processes ``k`` rows per chunk.
* ``null`` (:data:`AUTO`): chosen per op from the static shapes, i.e. from N_res and N_seq: no chunking when the
  op's whole intermediate is below :data:`UNCHUNKED_BYTES` (config ``chunking.unchunked_mib``), else the largest
  power of two of rows whose intermediate stays within :data:`AUTO_BUDGET_BYTES` (config
  ``chunking.auto_budget_mib``) or within the op's output size (at most 4 budgets), whichever is larger
  (:func:`rows_per_chunk`: each chunk write copies the whole output). Small inputs are then not chunked at all; at
  N_res = 1024 triangle attention runs 4 rows and extra-MSA row attention 2 rows per chunk.

Two MindSpore 2.10 CPU behaviours dominate inference memory, more than the activations themselves (measured with
the full-width network, 5120 extra-MSA rows): an elementwise op that broadcasts an operand implicitly keeps a
workspace of ~4x its output alive for the whole execution (use :func:`primitives.expand` / ``bias_add``), and a
Transpose kernel allocates ~2x its tensor's size when the graph is compiled, for the graph's lifetime (use
:func:`permute`, which transposes chunk by chunk; with the native kernels ``Module.permute`` uses the native permute,
which allocates only its output). Both costs are per kernel, so inside chunk loops they are small.

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

from mindsponge_fold.model.kernels import transpose

AUTO = -1                          # ModelContext.chunk_size for config ``chunk_size: null``
AUTO_BUDGET_BYTES = 32 * 2 ** 20   # default largest intermediate of one chunk under the automatic rule (see below)
UNCHUNKED_BYTES = 256 * 2 ** 20    # default: ops whose whole intermediate is below this run unchunked (see below)
ITEM_BYTES = 4
OUTPUT_FLOOR_CAP = 4               # the output-size floor of the automatic rule stops at this many budgets


def setting_from_config(value) -> int:
    """Config ``chunking.chunk_size`` (null | 0 | positive int) -> ModelContext.chunk_size."""
    if value is None:
        return AUTO
    value = int(value)
    if value < 0:
        raise ValueError(f"chunking.chunk_size must be null, 0 or a positive number of rows, got {value}")
    return value


def rows_per_chunk(setting: int, num_rows: int, row_elems: int, budget_bytes: int = AUTO_BUDGET_BYTES,
                   out_row_elems: int = 0, unchunked_bytes: int = UNCHUNKED_BYTES) -> int:
    """Rows per chunk for an op over ``num_rows`` rows whose largest intermediate has ``row_elems`` elements per row
    (automatic rule: within ``budget_bytes``, config ``chunking.auto_budget_mib``). Returns ``num_rows`` (no
    chunking) when chunking is off or one chunk covers everything.

    ``out_row_elems``: elements per row of the op's output when :func:`map_rows` assembles it. Writing a chunk into
    that output copies the whole output on MindSpore 2.10 CPU (``tensor_scatter_update`` is not in place: 26 ms per
    write into a 131 MB buffer, whatever the chunk's size), so many small chunks of a large output cost more in
    copies than in compute. The automatic rule therefore lets a chunk's intermediate be as large as the output
    itself, up to :data:`OUTPUT_FLOOR_CAP` times ``budget_bytes`` (budget = min(max(``budget_bytes``, output
    bytes), cap x ``budget_bytes``)): without the cap, long sequences ran out of memory (N_res 1024, 1 + 1 blocks:
    killed at 22 GiB, benchmarks/results/bench_predict_1024_uncapped.json).

    ``unchunked_bytes`` (config ``chunking.unchunked_mib``): an op whose intermediate over all its rows is smaller
    than this is not chunked at all. Every chunk costs a loop iteration, row gathers and a whole-output write; below
    this size that costs more time than the memory it saves is worth (full model_1_ptm at N_res 100: the Evoformer's MSA
    ops then run in one piece; forward 81.1 -> 66.0 s and peak RSS 2.72 -> 2.48 GiB, one run after the other; the
    extra-MSA stack's ops, 0.4-0.7 GB each there, stay chunked: chunking nothing took 3.54 GiB;
    benchmarks/results/bench_chunk_full100.json).
    """
    if setting == 0:
        return num_rows
    if setting > 0:
        return min(num_rows, setting)
    if num_rows * int(row_elems) * ITEM_BYTES < int(unchunked_bytes):
        return num_rows
    budget = int(budget_bytes)
    budget = min(max(budget, num_rows * int(out_row_elems) * ITEM_BYTES), OUTPUT_FLOOR_CAP * budget)
    rows = max(1, budget // max(1, row_elems * ITEM_BYTES))
    rows = 1 << (rows.bit_length() - 1)            # power of two: chunk sizes stay stable across lengths
    return min(num_rows, rows)


def zeros_from(like, shape, dtype):
    """Zeros of ``shape`` made at run time from the Tensor ``like``. A constant ``ops.zeros`` buffer is folded into
    the compiled graph as a value node that MindSpore keeps allocated for the graph's lifetime (measured: the
    full-width 2-block network held 6.2 GiB right after compiling at N_res = 256, 2.3 GiB at 64)."""
    seed = ops.zeros_like(like.reshape(-1)[:1]).astype(dtype)
    return ops.broadcast_to(seed.reshape((1,) * len(shape)), tuple(shape))


def permute(x, perm, chunk):
    """:func:`kernels.transpose` built ``chunk`` output rows at a time: each chunk gathers its slice of the input along
    axis ``perm[0]`` and permutes only that slice (inference: the permuted copy exists a chunk at a time)."""
    perm = tuple(perm)
    n = x.shape[perm[0]]
    if chunk >= n:
        return transpose(x, perm)
    out_shape = tuple(x.shape[p] for p in perm)
    num_chunks = (n + chunk - 1) // chunk
    offsets = ops.arange(0, chunk, 1, dtype=ms.int32)
    out = zeros_from(x, out_shape, x.dtype)
    j = ops.zeros((), ms.int32)
    while j < num_chunks:
        rows = ops.minimum(j * chunk + offsets, n - 1)
        part = transpose(ops.gather(x, rows, perm[0]), perm)
        out = ops.tensor_scatter_update(out, rows.reshape(chunk, 1), part)
        j = j + 1
    return out


def map_rows(fn, chunk, sliced, shared, out_tail, out_dtype):
    """``fn(*sliced, *shared)`` for a row-wise ``fn``, evaluated ``chunk`` rows at a time.

    ``sliced``: tuple of Tensors sharing their leading (row) axis; ``shared``: extra arguments passed whole;
    ``out_tail``: ``fn``'s output shape after the row axis; returns [rows] + out_tail in ``out_dtype``."""
    n = sliced[0].shape[0]
    if chunk >= n:
        return fn(*sliced, *shared).astype(out_dtype)
    num_chunks = (n + chunk - 1) // chunk
    offsets = ops.arange(0, chunk, 1, dtype=ms.int32)
    out = zeros_from(sliced[0], (n,) + tuple(out_tail), out_dtype)
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
