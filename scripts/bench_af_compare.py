#!/usr/bin/env python
"""Side-by-side forward time: this project vs the AlphaFold reference (jax, CPU) with the same weights and features.

Cases (one recycling iteration each, ``num_recycle=0``; every run in its own subprocess):

* ``fixture``: the reference fixture's config, weights (params.npz) and processed features (2crb, 97 residues,
  reduced-size network);
* ``full``: model_1_ptm at each of ``--num-res`` residue counts (48 Evoformer blocks, 508+4 MSA rows, 5120 extra rows, 4
  templates) with random weights of this project exported in AlphaFold's layout
  (``model.params.export_alphafold_params``) and synthetic features.

The AlphaFold side runs ``scripts/bench_af_reference.py`` with the Python of ``--af-venv`` (a venv with
``alphafold-colabfold==2.3.27``, jax, dm-haiku; see README "Performance"). Reports first call (compile + run),
steady forward, their ratio ours/AlphaFold, and the largest final-atom-position difference between the two.

    python scripts/bench_af_compare.py --af-venv /work/afvenv [--cases fixture full] [--num-res 100 [256 ...]]
        [--set KEY=VALUE (both sides)] [--ours-set KEY=VALUE] [--repeats K]
        [--out benchmarks/results/bench_af_compare.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# fp32 and no fused kernels on the AlphaFold side, as in the fixture (the fork defaults to bfloat16)
AF_FP32 = ["model.global_config.bfloat16=false", "model.global_config.bfloat16_output=false",
           "model.global_config.use_pallas=false", "model.global_config.fp8=false",
           "model.embeddings_and_evoformer.evoformer.triangle_multiplication_outgoing.fuse_projection_weights=false",
           "model.embeddings_and_evoformer.evoformer.triangle_multiplication_incoming.fuse_projection_weights=false",
           "model.embeddings_and_evoformer.template.template_pair_stack.triangle_multiplication_outgoing."
           "fuse_projection_weights=false",
           "model.embeddings_and_evoformer.template.template_pair_stack.triangle_multiplication_incoming."
           "fuse_projection_weights=false"]


def ours_child(args) -> dict:
    """Our side: one iteration, first call and a second (compiled) call."""
    os.environ.setdefault("GLOG_v", "3")
    from mindsponge_fold.common.config import apply_overrides, load_alphafold_config_file, load_config
    from mindsponge_fold.model.runner import ModelRunner
    if args.config_json:
        cfg = apply_overrides(load_alphafold_config_file(args.config_json), list(args.overrides))
    else:
        cfg = load_config(args.preset, ["chunking.chunk_size=" + ("null" if args.chunk == "auto" else args.chunk)]
                          + list(args.overrides))
    with np.load(args.features) as f:
        features = {k: f[k] for k in f.files}
    runner = ModelRunner(cfg, args.params, bucket=False)
    out, t1 = runner.run(features, num_recycle=0)
    steady = min(runner.run(features, num_recycle=0)[1]["iterations_s"][0] for _ in range(max(1, args.repeats)))
    if args.save_positions:
        np.save(args.save_positions, out["structure_module/final_atom_positions"])
    return {"side": "ours", "first_call_s": round(t1["first_call_s"], 2), "forward_s": round(steady, 2),
            "compile_s_est": round(t1["first_call_s"] - steady, 2), "peak_rss_gib": round(bc.peak_rss_gib(), 2)}


def export_full_case(args, work) -> tuple[str, str]:
    """Random full-size weights in AlphaFold's layout + synthetic features with a leading batch axis."""
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.model.alphafold import build_model
    from mindsponge_fold.model.params import export_alphafold_params
    cfg = load_config(args.preset, list(args.overrides))
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    arrays = {k: np.asarray(v, np.float32) for k, v in export_alphafold_params(model).items()}
    for k in sorted(arrays):            # non-zero everywhere (AlphaFold zero-initialises its output layers)
        arrays[k] = (arrays[k] + 0.02 * (1 + np.abs(arrays[k])) * rng.standard_normal(arrays[k].shape)).astype(
            np.float32)
    params = os.path.join(work, "params_full.npz")
    np.savez(params, **arrays)
    feats = bc.synthetic_iteration(cfg, args.num_res)
    features = os.path.join(work, "features_full.npz")
    np.savez(features, **{k: np.asarray(v)[None] for k, v in feats.items()})
    return params, features


def compare_case(name, args, params, features, config_json, work) -> dict:
    our_pos, af_pos = os.path.join(work, f"{name}_ours.npy"), os.path.join(work, f"{name}_af.npy")
    ours_cmd = [sys.executable, os.path.abspath(__file__), "--child", "--params", params, "--features", features,
                "--preset", args.preset, "--chunk", args.chunk, "--save-positions", our_pos,
                "--repeats", str(args.repeats)]
    ours_cmd += [x for s in args.overrides + args.ours_overrides for x in ("--set", s)]
    af_cmd = [os.path.join(args.af_venv, "bin", "python"), os.path.join(HERE, "bench_af_reference.py"),
              "--params", params, "--features", features, "--repeats", str(args.repeats),
              "--save-positions", af_pos] + [x for s in args.overrides for x in ("--set", s)]
    if config_json:
        ours_cmd += ["--config-json", config_json]
        af_cmd += ["--config-json", config_json]
    else:
        af_cmd += ["--model", args.preset] + [x for s in AF_FP32 for x in ("--set", s)]
    entry = {"case": name}
    for side, cmd in (("ours", ours_cmd), ("alphafold", af_cmd)):
        print(f"{name}/{side}: running", flush=True)
        entry[side] = bc.run_entry(bc.run_guarded(cmd, args.mem_limit, args.timeout), {"side": side})
        print(json.dumps(entry[side]), flush=True)
    if "forward_s" in entry["ours"] and "forward_s" in entry["alphafold"]:
        entry["forward_ratio_ours_over_af"] = round(entry["ours"]["forward_s"] / entry["alphafold"]["forward_s"], 2)
        entry["first_call_ratio_ours_over_af"] = round(entry["ours"]["first_call_s"]
                                                       / entry["alphafold"]["first_call_s"], 2)
        a, b = np.load(our_pos), np.load(af_pos)
        entry["max_abs_diff_final_atom_positions_A"] = float(np.abs(a - b).max())
    return entry


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--af-venv", default=os.environ.get("AF_VENV", "/work/afvenv"))
    ap.add_argument("--cases", nargs="+", default=["fixture", "full"], choices=["fixture", "full"])
    ap.add_argument("--num-res", type=int, nargs="+", default=[100],
                    help="residue counts of the full case (one full-case entry each, in this order)")
    ap.add_argument("--preset", default="model_1_ptm")
    ap.add_argument("--chunk", default="auto")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for both sides (full case; the value must be valid JSON and YAML)")
    ap.add_argument("--ours-set", dest="ours_overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for our side only (e.g. runtime.jit_level=O0)")
    ap.add_argument("--repeats", type=int, default=1, help="steady calls per side (the best is reported)")
    ap.add_argument("--mem-limit", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=5400.0)
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_af_compare.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--params", default="", help=argparse.SUPPRESS)
    ap.add_argument("--features", default="", help=argparse.SUPPRESS)
    ap.add_argument("--config-json", default="", help=argparse.SUPPRESS)
    ap.add_argument("--save-positions", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(ours_child(args)), flush=True)
        return
    if not os.path.exists(os.path.join(args.af_venv, "bin", "python")):
        raise SystemExit(f"{args.af_venv}: no AlphaFold venv (see README 'Performance' for how to build it)")
    report = {"benchmark": "forward time, this project vs AlphaFold (jax CPU), same weights and features",
              "af_venv": args.af_venv, "machine": bc.machine_info(), "cases": []}
    with tempfile.TemporaryDirectory(prefix="msf_af_compare_") as work:
        for case in args.cases:
            if case == "fixture":
                ref = bc.REPO.parent / "shared" / "fixtures" / "reference"
                ref = os.environ.get("MSF_REFERENCE", str(ref))
                entry = compare_case("fixture", args, os.path.join(ref, "params.npz"),
                                     os.path.join(ref, "processed_features.npz"), os.path.join(ref, "config.json"),
                                     work)
                report["cases"].append(entry)
                bc.write_result(args.out, report)
                continue
            for n_res in args.num_res:
                t0 = time.time()
                params, features = export_full_case(argparse.Namespace(**{**vars(args), "num_res": n_res}), work)
                entry = compare_case(f"full_{args.preset}_{n_res}", args, params, features, "", work)
                entry["case_wall_s"] = round(time.time() - t0, 1)
                report["cases"].append(entry)
                bc.write_result(args.out, report)


if __name__ == "__main__":
    main()
