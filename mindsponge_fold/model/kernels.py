"""Operators picked for what their gradients cost on MindSpore 2.10's CPU backend (measured with a 128 MiB tensor,
scripts/bench_kernels_cpu.py).

* :func:`transpose` is ``mint.permute``: ``ops.transpose`` (the Transpose kernel) allocates, when its graph is
  compiled, an index table of about twice its tensor that stays for the graph's lifetime (+0.29 GiB forward, +0.55 GiB
  in a gradient graph; ``mint.permute``: +0.01 / +0.02 GiB). A training step compiles a dozen graphs.
* :data:`matmul` is the ``MatMul`` primitive: the functional ``ops.matmul`` differentiates through explicit Transpose
  kernels (+0.28 GiB of tables per large Linear in a gradient graph); the primitive's gradient uses the transpose
  flags of MatMul itself (+0.03 GiB). :data:`matmul_ta` multiplies by the transpose of its first operand.

Same values either way (exactly the same kernels run).
"""
from mindspore import mint, ops

matmul = ops.MatMul()
matmul_ta = ops.MatMul(transpose_a=True)


def transpose(x, perm):
    """``x`` with its axes permuted (``perm`` a tuple)."""
    return mint.permute(x, tuple(perm))
