"""Data-parallel setup over MindSpore's communication runtime (HCCL on Ascend, NCCL on GPU, MCCL on CPU).

Launch with ``msrun --worker_num=N ...`` (see ``scripts/train_*.sh``) or an Ascend rank table. :func:`setup` calls
``mindspore.communication.init()`` only when the process was launched distributed (``MS_ROLE`` set by msrun /
dynamic-cluster env vars, or ``RANK_TABLE_FILE`` with ``RANK_SIZE`` > 1): a plain ``python`` process would fail in
``init()``. Gradients are averaged by ``nn.DistributedGradReducer`` inside the compiled apply step
(:class:`mindsponge_fold.train.step.ApplyStep`); the dataset is sharded by rank; only rank 0 writes.
"""
from __future__ import annotations

import dataclasses
import os

from mindsponge_fold.model.runner import set_graph_mode


@dataclasses.dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_distributed(env=None) -> bool:
    env = os.environ if env is None else env
    if env.get("MS_ROLE"):
        return True
    return bool(env.get("RANK_TABLE_FILE")) and int(env.get("RANK_SIZE", "1") or 1) > 1


def setup(device: str = "CPU", jit_level: str = "auto") -> World:
    """Select the device (``DEVICE_ID`` honoured) and, when launched distributed, initialise communication and
    data-parallel mode. Returns the process's place in the world."""
    import mindspore as ms
    device_id = os.environ.get("DEVICE_ID")
    if device_id is not None and device.upper() != "CPU":
        ms.set_device(device, int(device_id))
        set_graph_mode(None, jit_level)
    else:
        set_graph_mode(device, jit_level)
    if not launched_distributed():
        return World()
    from mindspore.communication import get_group_size, get_rank, init
    init()
    world = World(rank=get_rank(), size=get_group_size())
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=world.size)
    return world


def any_rank(flag: bool, world: World) -> bool:
    """True when ``flag`` is set on any rank (e.g. a SIGTERM seen by one worker): every rank stops at the same step."""
    if not world.distributed:
        return bool(flag)
    import mindspore as ms
    import numpy as np
    from mindspore import ops
    # (a sum: the CPU AllReduce kernel supports no other reduction)
    out = ops.AllReduce(ops.ReduceOp.SUM)(ms.Tensor(np.array([1.0 if flag else 0.0], np.float32)))
    return bool(out.asnumpy()[0] > 0)
