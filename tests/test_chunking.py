"""Inference chunking (model/chunking.py): chunked and unchunked networks agree, chunking stays correct when the
compiled graph is re-executed, it is off in training, and the reference parity holds with chunking on."""
from dataclasses import replace

import mindspore as ms
import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.common.config import load_config
from mindsponge_fold.common.errors import ConfigError
from mindsponge_fold.model import chunking
from mindsponge_fold.model.primitives import Module, ModelContext
from mindsponge_fold.model.runner import ModelRunner, split_iterations
from parity import compare, network_outputs, relative_errors

CONSTANT = ("structure_module/final_atom14_mask", "structure_module/final_atom_mask", "distogram/bin_edges",
            "predicted_aligned_error/breaks")


def test_rows_per_chunk_rule():
    assert chunking.rows_per_chunk(0, 100, 10 ** 9) == 100                  # off
    assert chunking.rows_per_chunk(7, 100, 1) == 7 and chunking.rows_per_chunk(7, 5, 1) == 5
    n = 1024     # auto: triangle attention rows (4 heads x N x N) and extra-MSA row attention rows (8 heads)
    budget_rows = chunking.AUTO_BUDGET_BYTES // 4
    tri = chunking.rows_per_chunk(chunking.AUTO, n, 4 * n * n)
    row = chunking.rows_per_chunk(chunking.AUTO, 5120, 8 * n * n)
    assert tri * 4 * n * n <= budget_rows < 2 * tri * 4 * n * n and tri & (tri - 1) == 0
    assert row == max(1, budget_rows // (8 * n * n))
    assert chunking.rows_per_chunk(chunking.AUTO, 32, 4 * 32 * 32) == 32     # small inputs: one chunk
    assert chunking.rows_per_chunk(chunking.AUTO, 10 ** 6, 10 ** 12) == 1     # never below one row
    # the budget is chunking.auto_budget_mib: 4x the budget, 4x the rows (powers of two)
    assert chunking.rows_per_chunk(chunking.AUTO, n, 4 * n * n, 4 * chunking.AUTO_BUDGET_BYTES) == 4 * tri
    # a chunk may hold as much as the op's output (every chunk write copies the whole output): extra-MSA row
    # attention at N_res 100 writes [5120, 100, 64]; a small output leaves the budget in charge
    n, auto, budget = 100, chunking.AUTO, chunking.AUTO_BUDGET_BYTES
    rows = chunking.rows_per_chunk(auto, 5120, 8 * n * n, budget, n * 64)
    assert rows * 8 * n * n * 4 <= 5120 * n * 64 * 4 < 2 * rows * 8 * n * n * 4 and rows & (rows - 1) == 0
    assert rows == 256 > chunking.rows_per_chunk(auto, 5120, 8 * n * n, budget) == 64
    assert chunking.rows_per_chunk(auto, n, 4 * n * n, budget, 1) == chunking.rows_per_chunk(auto, n, 4 * n * n)
    assert chunking.rows_per_chunk(7, 5120, 8 * n * n, budget, n * 64) == 7          # fixed chunk size: as set
    # ... up to OUTPUT_FLOOR_CAP budgets (N_res 1024: the output is 1.34 GB)
    n = 1024
    capped = chunking.rows_per_chunk(auto, 5120, 8 * n * n, budget, n * 64)
    assert capped * 8 * n * n * 4 <= chunking.OUTPUT_FLOOR_CAP * budget < 2 * capped * 8 * n * n * 4
    # an op whose whole intermediate is below chunking.unchunked_mib runs in one piece; as large and it is chunked
    whole = 512 * 100 * 1280 * 4                 # MSA transition at N_res 100: 512 rows x 100 x (1024 + 256)
    assert chunking.rows_per_chunk(auto, 512, 100 * 1280, budget, 100 * 256, whole + 1) == 512
    assert chunking.rows_per_chunk(auto, 512, 100 * 1280, budget, 100 * 256, whole) == 64
    assert chunking.rows_per_chunk(auto, 512, 100 * 1280, budget, 100 * 256, 0) == 64
    assert chunking.rows_per_chunk(auto, 512, 100 * 1280, budget, 100 * 256) == 512     # default: 256 MiB
    assert chunking.rows_per_chunk(5, 512, 100 * 1280, budget, 100 * 256, whole + 1) == 5   # fixed size: as set
    ctx = ModelContext.from_config(load_config("tiny", ["chunking.unchunked_mib=16", "chunking.auto_budget_mib=1"]))
    assert ctx.chunk_unchunked_bytes == 16 * 2 ** 20 and Module(ctx).chunk_unchunked == 16 * 2 ** 20
    cell = Module(replace(ctx, chunk_size=chunking.AUTO))
    assert cell.rows_per_chunk(15, 2 ** 18) == 15 and cell.rows_per_chunk(16, 2 ** 18) == 1    # below 16 MiB
    with pytest.raises(ConfigError, match="chunking.unchunked_mib"):
        load_config("tiny", ["chunking.unchunked_mib=-1"])
    ctx = ModelContext.from_config(load_config("tiny", ["chunking.auto_budget_mib=128"]))
    assert ctx.chunk_budget_bytes == 128 * 2 ** 20
    assert Module(ctx).chunk_budget == 128 * 2 ** 20
    assert ModelContext.from_config(load_config("tiny")).chunk_budget_bytes == chunking.AUTO_BUDGET_BYTES
    with pytest.raises(ConfigError, match="chunking.auto_budget_mib"):
        load_config("tiny", ["chunking.auto_budget_mib=0"])
    assert chunking.setting_from_config(None) == chunking.AUTO and chunking.setting_from_config(0) == 0
    with pytest.raises(ValueError):
        chunking.setting_from_config(-3)
    cell = Module(ModelContext(chunk_size=4))
    assert cell.rows_per_chunk(10, 1) == 4
    cell.set_train(True)
    assert cell.rows_per_chunk(10, 1) == 10                                   # never in training


@pytest.fixture(scope="module")
def tiny_iters():
    with np.load(reference_path("processed_features.npz")) as f:
        return split_iterations({k: f[k] for k in f.files})


def tiny_runner(chunk_size, weights):
    cfg = load_config("tiny", ["data.eval.max_templates=4", "model.embeddings_and_evoformer.template.max_templates=4"])
    runner = ModelRunner(cfg, None, bucket=False, ctx=replace(ModelContext.from_config(cfg), chunk_size=chunk_size))
    for p in runner.model.get_parameters():
        p.set_data(ms.Tensor(weights[p.name]))
    return runner


def test_chunked_tiny_model_matches_unchunked_and_reexecutes(tiny_iters):
    ref_runner = ModelRunner(load_config("tiny", ["data.eval.max_templates=4",
                                                  "model.embeddings_and_evoformer.template.max_templates=4"]),
                             None, bucket=False)
    rng = np.random.default_rng(3)
    weights = {p.name: (p.asnumpy() + 0.1 * rng.standard_normal(p.shape)).astype(np.float32)
               for p in ref_runner.model.get_parameters()}
    n = 97
    prev = (rng.standard_normal((n, 37, 3)).astype(np.float32) * 10,
            rng.standard_normal((n, 16)).astype(np.float32), rng.standard_normal((n, n, 8)).astype(np.float32))
    plain, chunked = tiny_runner(0, weights), tiny_runner(5, weights)   # 5 rows: uneven last chunk everywhere
    for batch, p in ((tiny_iters[0], plain.zero_prev(n)), (tiny_iters[1], prev)):
        a = plain.iterate(plain.prepare(batch, n), p)
        b = chunked.iterate(chunked.prepare(batch, n), p)
        errors = {k: relative_errors(b[k], a[k]) for k in a if k not in CONSTANT}
        print({k: f"{e[0]:.1e}/{e[1]:.1e}" for k, e in errors.items()})
        # float32 reassociation only: ~1e-7 in the trunk, amplified to ~1e-5 through the 8 structure layers
        assert max(e[1] for e in errors.values()) <= 1e-5, errors       # rms / rms(ref)
        assert max(e[0] for e in errors.values()) <= 5e-5, errors       # max / max|ref|
        if batch is tiny_iters[0]:
            first = b
    # the second execution of the chunked graph is fresh (no stale chunk buffers)
    stale = [k for k in first if k not in CONSTANT and np.array_equal(first[k], b[k])]
    assert not stale, stale


def test_reference_parity_with_chunking_on():
    from mindsponge_fold.common.config import load_alphafold_config_file
    cfg = load_alphafold_config_file(reference_path("config.json"))
    runner = ModelRunner(cfg, reference_path("params.npz"), bucket=False,
                         ctx=replace(ModelContext.from_config(cfg), chunk_size=8))
    with np.load(reference_path("processed_features.npz")) as f:
        features = {k: f[k] for k in f.files}
    ours, _ = runner.run(features, num_recycle=0)
    ref_file = np.load(reference_path("outputs_recycle0.npz"))
    keys = network_outputs(ref_file)
    report = compare(ours, {k: ref_file[k] for k in ref_file.files}, keys)
    assert len(report) == len(keys) >= 25


def test_permute_in_chunks_equals_transpose():
    """chunking.permute (used instead of big Transpose kernels at inference) is an exact transpose, also when the
    last chunk is partial, and zeros_from gives zeros of the asked shape."""
    from mindspore import nn

    class Permute(nn.Cell):
        def __init__(self, perm, chunk):
            super().__init__()
            self.perm, self.chunk = perm, chunk

        def construct(self, x):
            return chunking.permute(x, self.perm, self.chunk), chunking.zeros_from(x, (2, 3), ms.float32)

    ms.set_context(mode=ms.GRAPH_MODE)
    x = np.random.default_rng(0).standard_normal((7, 5, 4)).astype(np.float32)
    for perm in ((1, 0, 2), (2, 0, 1), (2, 1, 0), (1, 2, 0)):
        out, zeros = Permute(perm, 3)(ms.Tensor(x))
        np.testing.assert_array_equal(out.asnumpy(), np.transpose(x, perm))
        np.testing.assert_array_equal(zeros.asnumpy(), np.zeros((2, 3), np.float32))
