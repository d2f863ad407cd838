"""mindsponge_fold.model.host_memory: a graph is compiled once per input signature, the compiler's freed heap is
returned to the operating system, and the graph's results are those of calling the Cell directly."""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mindsponge_fold.model.host_memory import can_release, compile_then_release, run_graph

KIND = "sigmoid"


class ManyKernels(nn.Cell):
    """``num`` chained sigmoid kernels, each picked by a branch the compiler folds away (as model code picks its
    operators by configuration): compiling it allocates, and frees, heap in proportion to ``num``."""

    def __init__(self, num: int):
        super().__init__()
        self.num = num

    def construct(self, x):
        for _ in range(self.num):
            if KIND == "relu":
                x = ops.relu(x)
            elif KIND == "tanh":
                x = ops.tanh(x)
            elif KIND == "sigmoid":
                x = ops.sigmoid(x)
        return x


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20


def test_compiles_once_per_signature_and_matches_direct_call():
    ms.set_context(mode=ms.GRAPH_MODE)
    cell = ManyKernels(3)
    x = ms.Tensor(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4))
    assert compile_then_release(cell, x) is True
    assert compile_then_release(cell, x) is False                           # same shapes: the cached graph
    out = run_graph(cell, x).asnumpy()
    expected = x.asnumpy()
    for _ in range(3):
        expected = 1 / (1 + np.exp(-expected))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    y = ms.Tensor(np.ones((5, 4), np.float32))
    assert compile_then_release(cell, y) is True                            # new shapes: a new graph
    np.testing.assert_allclose(run_graph(cell, y).asnumpy(), cell(y).asnumpy())


PROBE = """
import sys, numpy as np, mindspore as ms
sys.path.insert(0, sys.argv[1])
from test_host_memory import ManyKernels, _rss_mib
from mindsponge_fold.model.host_memory import release_free_heap
ms.set_context(mode=ms.GRAPH_MODE, jit_config={"jit_level": "O1"})
cell = ManyKernels(200)
x = ms.Tensor(np.ones((100, 100, 64), np.float32))
before = _rss_mib()
cell.compile(x)
compiled = _rss_mib()
ok = release_free_heap()
print(before, compiled, _rss_mib(), ok)
"""


@pytest.mark.skipif(not can_release(), reason="malloc_trim is a glibc function; elsewhere the release does nothing")
def test_release_returns_the_compilers_freed_heap():
    """In a fresh process (as a predict run starts): compiling 200 kernels grows the heap, and the release returns a
    good part of it (measured: +76 MiB, -38 MiB)."""
    env = dict(os.environ, GLOG_v="3")
    out = subprocess.run([sys.executable, "-c", PROBE, os.path.dirname(os.path.abspath(__file__))],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    before, compiled, released, ok = out.stdout.split()[-4:]
    before, compiled, released = float(before), float(compiled), float(released)
    assert ok == "True"
    assert compiled - before > 40, (before, compiled)
    assert compiled - released > 20, (before, compiled, released)


TRIM_PROBE = """
import ctypes, sys, threading, time
sys.path.insert(0, sys.argv[1])
from test_host_memory import _rss_mib
from mindsponge_fold.model.host_memory import releasing_every
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(64 * 1024 - 64) for _ in range(3200)]   # ~200 MiB below the mmap threshold: heap
for b in blocks:
    ctypes.memset(b, 1, 64 * 1024 - 64)
before = _rss_mib()
for b in blocks[::2]:                                            # every other one: holes the heap cannot merge
    libc.free(b)
freed = _rss_mib()
with releasing_every(float(sys.argv[2])):
    time.sleep(1.0)
    inside = _rss_mib()
    threads = sorted(t.name for t in threading.enumerate())
print(before, freed, inside, "malloc-trim" in threads, "malloc-trim" in [t.name for t in threading.enumerate()])
"""


@pytest.mark.skipif(not can_release(), reason="malloc_trim is a glibc function; elsewhere the release does nothing")
@pytest.mark.parametrize("seconds", [0.1, 0])
def test_releasing_every_trims_while_the_block_runs(seconds):
    """Heap freed while the block runs goes back to the operating system before the block ends (the compiler's
    frees, during a compile); the trimming thread stops with the block. ``seconds=0`` trims nothing."""
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE, os.path.dirname(os.path.abspath(__file__)), str(seconds)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    before, freed, inside, running_inside, running_after = out.stdout.split()[-5:]
    before, freed, inside = float(before), float(freed), float(inside)
    assert running_after == "False"
    if seconds:
        assert running_inside == "True"
        assert freed - inside > 60, (before, freed, inside)       # ~100 MiB freed in holes; back with the trim
    else:
        assert running_inside == "False"
        assert freed - inside < 10, (before, freed, inside)
