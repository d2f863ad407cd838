"""Graph compilation and the process's heap: compile a graph on its own, then hand the memory the compiler freed
back to the operating system before the graph first runs.

MindSpore 2.10 compiles a graph on the host heap and frees most of what it allocated on the way, but glibc keeps
those freed pages in the process (they are small blocks scattered through the heap, so the allocator never trims
them itself). The first run's large tensors are then allocated beside them (``mmap``), and the resident memory
carries both. ``malloc_trim(0)`` right after the compile returns the free pages (measured: compiling the
model_1_ptm network with 1 + 1 blocks at N_res 100 raises the resident memory by 1.67 GiB, 0.59 GiB of which
the trim returns; the forward's peak falls from 3.76 to 3.18 GiB; ``scripts/bench_af_compare.py`` records the
peaks). The compile's heap grows with the graph (operators, and the Python code the compiler unrolls: 200 chained
small kernels took 36-99 MiB depending on how they were written) and, for this network, with N_res too (1.27 / 1.67 /
2.0 GiB at N_res 32 / 100 / 160).

:func:`run_graph` calls the inference graph (:class:`mindsponge_fold.model.runner.ModelRunner`). The training step
does not use it: releasing after each of its graphs' compiles moved the crop-64 full-size step's peak only from 6.83
to 6.80 GiB (benchmarks/results/bench_train_graph_memory64_release_experiment.json), because the step's later
small allocations reuse the freed heap anyway.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import threading

_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _LIBC = False
    return _LIBC


def _malloc_trim():
    libc = _libc()
    return getattr(libc, "malloc_trim", None) if libc else None


def can_release() -> bool:
    """Whether :func:`release_free_heap` can do anything here (the C library has ``malloc_trim``: glibc)."""
    return _malloc_trim() is not None


def release_free_heap() -> bool:
    """Return the heap's free pages to the operating system (glibc ``malloc_trim``). False where the C library has
    no ``malloc_trim`` (not glibc): then nothing happens."""
    trim = _malloc_trim()
    if trim is None:
        return False
    gc.collect()
    trim(0)
    return True


@contextlib.contextmanager
def releasing_every(seconds: float):
    """While the block runs, ``malloc_trim`` every ``seconds`` from a background thread: the compiler frees memory as
    it goes, and without this the freed pages pile up until the compile ends (the reference fixture's network: the
    compile's resident peak 1.38 -> 1.34 GiB). Nothing happens where there is no ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is None or seconds <= 0:
        yield
        return
    stop = threading.Event()

    def loop():
        while not stop.wait(seconds):
            trim(0)

    worker = threading.Thread(target=loop, name="malloc-trim", daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()


def compile_then_release(cell, *args) -> bool:
    """Compile ``cell`` for ``args`` unless a graph for them exists (trimming the heap as the compiler frees it:
    :func:`releasing_every`); after a new compile, :func:`release_free_heap`. Returns True when it compiled."""
    before = len(cell.compile_cache)
    with releasing_every(0.25):
        cell.compile(*args)
    if len(cell.compile_cache) == before:
        return False
    release_free_heap()
    return True


def run_graph(cell, *args):
    """``cell(*args)``, compiled first (and the compiler's freed memory released) when no graph for ``args`` exists
    yet."""
    compile_then_release(cell, *args)
    return cell(*args)
