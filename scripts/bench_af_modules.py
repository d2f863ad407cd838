#!/usr/bin/env python
"""Where the forward time goes, ours vs AlphaFold (jax CPU), module by module, from whole-network runs.

Each variant of the network (``--preset``, full widths and MSA sizes, random weights exported to AlphaFold's layout,
the same synthetic features on both sides) runs one recycling iteration on both sides through
``scripts/bench_af_compare.py`` (first call = compile + run, then the best of ``--repeats`` steady calls). The
variants differ in one module's depth, so a module's cost is a difference of two runs of the same code the user
runs (no module is timed out of context, and both sides are cut the same way):

* ``base``: 1 Evoformer block, 1 extra-MSA block, templates on, 8 structure-module layers;
* ``evoformer+2``: 3 Evoformer blocks -> one Evoformer block = (evoformer+2 - base) / 2;
* ``extra_msa+1``: 2 extra-MSA blocks -> one extra-MSA block;
* ``no_templates``: templates off -> the template stack (4 templates, 2 pair blocks, attention over templates);
* ``sm_1_layer``: 1 structure-module layer -> one layer = (base - sm_1_layer) / 7;
* the rest (input/recycling/extra-MSA embedders, heads, host-side work) = base - the modules above.

The same arithmetic on compile time (first call - steady call) gives compile time per part. The estimate for the
full model (48 + 4 blocks) is reported beside its parts.

    python scripts/bench_af_modules.py --af-venv /work/afvenv [--num-res 100] [--repeats 2]
        [--out benchmarks/results/bench_af_modules.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_af_compare as afc  # noqa: E402
import bench_common as bc  # noqa: E402

E = "model.embeddings_and_evoformer."
BASE = [E + "evoformer_num_block=1", E + "extra_msa_stack_num_block=1"]
VARIANTS = {
    "base": BASE,
    "evoformer+2": [E + "evoformer_num_block=3", BASE[1]],
    "extra_msa+1": [BASE[0], E + "extra_msa_stack_num_block=2"],
    "no_templates": BASE + [E + "template.enabled=false"],
    "sm_1_layer": BASE + ["model.heads.structure_module.num_layer=1"],
}


def _parts(t: dict, key: str, depth: dict) -> dict:
    """Per-module seconds from the variants' ``key`` times (see module docstring)."""
    evo = (t["evoformer+2"][key] - t["base"][key]) / 2
    extra = t["extra_msa+1"][key] - t["base"][key]
    templ = t["base"][key] - t["no_templates"][key]
    sm_layer = (t["base"][key] - t["sm_1_layer"][key]) / 7
    rest = t["base"][key] - evo - extra - templ - 8 * sm_layer
    parts = {"evoformer_block": evo, "extra_msa_block": extra, "template_stack": templ,
             "structure_module_layer": sm_layer, "structure_module_8_layers": 8 * sm_layer,
             "rest_embedders_heads_host": rest}
    parts["full_model_estimate"] = (rest + depth["evoformer"] * evo + depth["extra_msa"] * extra + templ
                                    + 8 * sm_layer)
    return {k: round(v, 3) for k, v in parts.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--af-venv", default=os.environ.get("AF_VENV", "/work/afvenv"))
    ap.add_argument("--num-res", type=int, default=100)
    ap.add_argument("--preset", default="model_1_ptm")
    ap.add_argument("--chunk", default="auto")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ours-set", dest="ours_overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for our side only (e.g. runtime.jit_level=O0)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--mem-limit", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_af_modules.json"))
    args = ap.parse_args(argv)
    if not os.path.exists(os.path.join(args.af_venv, "bin", "python")):
        raise SystemExit(f"{args.af_venv}: no AlphaFold venv (see README 'Performance' for how to build it)")
    report = {"benchmark": "forward time per module, ours vs AlphaFold (jax CPU), by difference of whole-network "
                           "variants (same weights and features on both sides)",
              "command": "python scripts/bench_af_modules.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "preset": args.preset, "num_res": args.num_res, "machine": bc.machine_info(), "variants": {}}
    with tempfile.TemporaryDirectory(prefix="msf_af_modules_") as work:
        for name in args.variants:
            vargs = SimpleNamespace(**{**vars(args), "overrides": VARIANTS[name]})
            t0 = time.time()
            params, features = afc.export_full_case(vargs, work)
            entry = afc.compare_case(name, vargs, params, features, "", work)
            entry["overrides"], entry["wall_s"] = VARIANTS[name], round(time.time() - t0, 1)
            report["variants"][name] = entry
            bc.write_result(args.out, report)
    report["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    if set(VARIANTS) <= set(report["variants"]):
        from mindsponge_fold.common.config import load_config
        c = load_config(args.preset).model.embeddings_and_evoformer
        depth = {"evoformer": c.evoformer_num_block, "extra_msa": c.extra_msa_stack_num_block}
        report["depth_of_full_model"] = depth
        for side in ("ours", "alphafold"):
            t = {n: {"forward": v[side]["forward_s"], "compile": v[side]["compile_s_est"]}
                 for n, v in report["variants"].items() if "forward_s" in v[side]}
            if len(t) == len(VARIANTS):
                report[f"{side}_forward_s"] = _parts(t, "forward", depth)
                report[f"{side}_compile_s"] = _parts(t, "compile", depth)
        if "ours_forward_s" in report and "alphafold_forward_s" in report:
            report["forward_ratio_ours_over_af"] = {
                k: round(v / report["alphafold_forward_s"][k], 2) if report["alphafold_forward_s"][k] > 0 else None
                for k, v in report["ours_forward_s"].items()}
    bc.write_result(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("variants", "machine")}, indent=1))


if __name__ == "__main__":
    main()
