"""``mindsponge-fold convert-params`` and ``mindsponge-fold params-table``.

convert-params: AlphaFold ``.npz`` -> our ``.ckpt`` (or ``.ckpt`` -> ``.npz``), checked name by name against the
model built from the config, so a file for another model is refused. The round trip is bit-exact.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mindsponge_fold.common.errors import InputError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="model_1_ptm",
                        help="config preset (model_1 ... model_5_ptm, tiny) or a yaml path (default model_1_ptm)")
    parser.add_argument("--af-config", help="AlphaFold config.json (full_config) to build the model from instead")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set model.embeddings_and_evoformer.evoformer_num_block=2")


def config_from_args(args):
    from mindsponge_fold.common.config import apply_overrides, load_alphafold_config_file, load_config
    if getattr(args, "af_config", None):
        cfg = load_alphafold_config_file(args.af_config)
        return apply_overrides(cfg, args.overrides)
    return load_config(args.model, args.overrides)


def add_arguments_convert_params(parser):
    add_model_arguments(parser)
    parser.add_argument("input", help="AlphaFold params_*.npz, or our .ckpt")
    parser.add_argument("output", help=".ckpt (from .npz) or .npz (from .ckpt)")
    parser.add_argument("--ema", action="store_true", help="ckpt -> npz: export the EMA weights")


def run_convert_params(args) -> int:
    from mindsponge_fold.model.alphafold import build_model
    from mindsponge_fold.model import params as P
    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise InputError("no such file", src)
    cfg = config_from_args(args)
    model = build_model(cfg)
    if dst.suffix == ".ckpt":
        n = P.npz_to_checkpoint(model, src, dst, meta={"model": cfg.get("name", args.model), "source": src.name})
    elif dst.suffix == ".npz":
        n = P.checkpoint_to_npz(model, src, dst, use_ema=args.ema)
    else:
        raise InputError("output must end in .ckpt or .npz", dst)
    print(f"converted {n} arrays: {src} -> {dst}")
    return 0


def add_arguments_params_table(parser):
    add_model_arguments(parser)
    parser.add_argument("--check", help="an AlphaFold .npz or manifest .json to check against the table")


def run_params_table(args) -> int:
    import json
    import numpy as np
    from mindsponge_fold.model.alphafold import build_model
    from mindsponge_fold.model import params as P
    model = build_model(config_from_args(args))
    rows = P.param_table(model)
    width = max(len(r[0]) for r in rows)
    for official, ours, shape in rows:
        print(f"{official:<{width}}  {ours}  {shape}")
    total = sum(int(np.prod(s)) for _, _, s in rows)
    print(f"# {len(rows)} arrays, {total:,} parameters")
    if args.check:
        path = Path(args.check)
        if path.suffix == ".json":
            shapes = {k: tuple(v["shape"]) for k, v in json.loads(path.read_text())["params"].items()}
        else:
            shapes = {k: v.shape for k, v in P.load_npz_arrays(path).items()}
        P.check_names(model, shapes, str(path))
        print(f"# {path}: every name and shape matches, none left over")
    return 0
