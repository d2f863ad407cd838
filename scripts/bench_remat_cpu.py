#!/usr/bin/env python
"""Does recomputation (gradient checkpointing) save memory on MindSpore's CPU backend? Peak RSS of one gradient.

The network is a chain of ``--segments`` segments, each ``--ops`` elementwise ops (``sin(x) * 1.01 + 0.1``) on a
``--mib`` MiB float32 vector, whose backward needs every op's input: without recomputation the gradient keeps
``segments * ops`` such vectors. Variants (``--variants``; each in its own guarded subprocess with its own peak RSS):

* ``plain``: one graph, ``mindspore.grad`` of the whole chain;
* ``cell_recompute``: the same with ``Cell.recompute()`` on the segment cell (what ``model.global_config.use_remat``
  does for the Evoformer blocks);
* ``loop`` / ``loop_recompute``: the segments in a graph ``while`` loop (as the stacked Evoformer runs), without / with
  ``Cell.recompute()``;
* ``host_segments``: recomputation driven from the host: a compiled no-gradient forward per segment keeps only the
  segment inputs, then a compiled vector-Jacobian graph per segment (``GradOperation(sens_param=True)``) re-runs that
  segment and returns the gradient of its input, from the last segment back to the first.

    python scripts/bench_remat_cpu.py [--variants plain ... host_segments] [--mib 100] [--segments 4] [--ops 5]
        [--mem-limit 20] [--out benchmarks/results/bench_remat_cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

VARIANTS = ("plain", "cell_recompute", "loop", "loop_recompute", "host_segments")


def run_one(args) -> dict:
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn, ops
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    num_ops, num_seg = args.ops, args.segments

    class Segment(nn.Cell):
        def construct(self, x):
            for _ in range(num_ops):
                x = ops.sin(x) * 1.01 + 0.1
            return x

    class Chain(nn.Cell):
        def __init__(self, loop, recompute):
            super().__init__()
            self.seg = Segment()
            self.loop = loop
            if recompute:
                self.seg.recompute()

        def construct(self, x):
            if self.loop:
                i = Tensor(0, ms.int32)
                while i < num_seg:
                    x = self.seg(x)
                    i = i + 1
            else:
                for _ in range(num_seg):
                    x = self.seg(x)
            return x.sum()

    x = Tensor(np.random.default_rng(0).random(args.mib * 2**18, dtype=np.float32))
    v = args.one
    if v == "host_segments":
        seg = Segment()
        vjp = ms.jit(ops.GradOperation(sens_param=True)(seg))
        fwd = ms.jit(seg.construct)
        inputs, h = [], x
        for _ in range(num_seg):                       # forward: keep only the segment inputs
            inputs.append(h)
            h = fwd(h)
        g = ops.ones_like(h)                            # d(sum)/d(output)
        for inp in reversed(inputs):                    # backward: recompute one segment at a time
            g = vjp(inp, g)
    else:
        g = ms.grad(Chain(loop=v.startswith("loop"), recompute=v.endswith("recompute")))(x)
    return {"variant": v, "grad_sum": float(g.sum().asnumpy()), "peak_rss_gib": round(bc.peak_rss_gib(), 3)}


def sweep(args, argv) -> None:
    runs = []
    for v in args.variants:
        entry = bc.run_entry(bc.run_guarded(bc.child_command(__file__, argv, "--variants", v), args.mem_limit, 600.0),
                             {"variant": v})
        runs.append(entry)
        print(json.dumps(entry), flush=True)
    report = {"benchmark": "peak RSS of one gradient with and without recomputation, MindSpore CPU graph mode",
              "activation_mib": args.mib, "segments": args.segments, "ops_per_segment": args.ops,
              "saved_activations_without_recompute_gib": round(args.mib * args.segments * args.ops / 1024, 3),
              "machine": bc.machine_info(), "runs": runs}
    bc.write_result(args.out, report)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--mib", type=int, default=100, help="size of the activation vector")
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--ops", type=int, default=5, help="elementwise ops per segment")
    ap.add_argument("--mem-limit", type=float, default=20.0, help="GiB; a run above it is killed")
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_remat_cpu.json"))
    ap.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    bc.sweep_main(ap, argv, run_one, sweep)


if __name__ == "__main__":
    main()
