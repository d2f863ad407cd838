"""``mindsponge-fold convert-params``: AlphaFold ``.npz`` -> our ``.ckpt`` (or ``.ckpt`` -> ``.npz``).

The weights are checked name by name against the model built from the config, so a file for another model is
refused. The round trip is bit-exact.
"""
from __future__ import annotations

from pathlib import Path

from mindsponge_fold.commands import options
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import check_output_file


def add_arguments(parser):
    options.add_config_options(parser, default="model_1_ptm", af_config=True)
    parser.add_argument("input", help="AlphaFold params_*.npz, or our .ckpt")
    parser.add_argument("output", help=".ckpt (from .npz) or .npz (from .ckpt)")
    options.add_ema_option(parser)


def run(args) -> int:
    from mindsponge_fold.model import params as P
    from mindsponge_fold.model.alphafold import build_model
    src, dst = Path(args.input), Path(args.output)
    P.weights_format(src)          # a file that is not weights at all: said before the model is built
    if dst.suffix not in (".ckpt", ".npz"):
        raise InputError("output must end in .ckpt or .npz", dst)
    check_output_file(dst)
    cfg = options.load_config_from_args(args)
    model = build_model(cfg)
    if dst.suffix == ".ckpt":
        n = P.npz_to_checkpoint(model, src, dst, meta={"model": cfg.get("name", args.config), "source": src.name})
    else:
        n = P.checkpoint_to_npz(model, src, dst, use_ema=args.ema)
    print(f"converted {n} arrays: {src} -> {dst}")
    return 0
