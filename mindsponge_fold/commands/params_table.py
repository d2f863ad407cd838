"""``mindsponge-fold params-table``: the AlphaFold-name -> Cell-parameter table of a config's model, optionally
checked against an AlphaFold ``.npz`` (or a manifest ``.json``): every name and shape must match, none left over."""
from __future__ import annotations

import json
from pathlib import Path

from mindsponge_fold.commands import options


def add_arguments(parser):
    options.add_config_options(parser, default="model_1_ptm", af_config=True)
    parser.add_argument("--check", help="an AlphaFold .npz or manifest .json to check against the table")


def run(args) -> int:
    import numpy as np
    from mindsponge_fold.model import params as P
    from mindsponge_fold.model.alphafold import build_model
    model = build_model(options.load_config_from_args(args))
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
