"""``mindsponge-fold params-table``: the AlphaFold-name -> Cell-parameter table of a config's model, optionally
checked against an AlphaFold ``.npz`` (or a manifest ``.json``): every name and shape must match, none left over."""
from __future__ import annotations

import json
from pathlib import Path

from mindsponge_fold.commands import options
from mindsponge_fold.common.errors import InputError


def add_arguments(parser):
    options.add_config_options(parser, default="model_1_ptm", af_config=True)
    parser.add_argument("--check", help="an AlphaFold .npz or manifest .json to check against the table")


def run(args) -> int:
    import numpy as np
    from mindsponge_fold.model import params as P
    from mindsponge_fold.model.alphafold import build_model
    shapes = read_shapes(Path(args.check)) if args.check else None      # a bad file: said before the table
    model = build_model(options.load_config_from_args(args))
    if shapes is not None:
        P.check_names(model, shapes, str(args.check))
    rows = P.param_table(model)
    width = max(len(r[0]) for r in rows)
    for official, ours, shape in rows:
        print(f"{official:<{width}}  {ours}  {shape}")
    total = sum(int(np.prod(s)) for _, _, s in rows)
    print(f"# {len(rows)} arrays, {total:,} parameters")
    if shapes is not None:
        print(f"# {args.check}: every name and shape matches, none left over")
    return 0


def read_shapes(path: Path) -> dict:
    """{AlphaFold name: shape} of an AlphaFold .npz or a manifest .json ({"params": {name: {"shape": [...]}}})."""
    from mindsponge_fold.model import params as P
    if path.suffix != ".json":
        P.weights_format(path)
        return {k: v.shape for k, v in P.load_npz_arrays(path).items()}
    try:
        params = json.loads(path.read_text())["params"]
        return {k: tuple(v["shape"]) for k, v in params.items()}
    except FileNotFoundError:
        raise InputError("no such manifest file", path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the manifest ({getattr(e, 'strerror', None) or type(e).__name__})",
                         path) from None
    except json.JSONDecodeError as e:
        raise InputError(f"manifest is not valid JSON ({e.msg} at line {e.lineno})", path) from None
    except (KeyError, TypeError, AttributeError):
        raise InputError("not a parameter manifest: expected {\"params\": {NAME: {\"shape\": [...]}}}", path) from None
