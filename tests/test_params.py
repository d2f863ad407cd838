"""AlphaFold weight import: every official name of the three full-size manifests maps to exactly one Cell parameter
(no leftovers either side), wrong files are refused clearly, and npz -> ckpt -> npz is bit-exact."""
import json

import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.cli import main
from mindsponge_fold.common.config import load_alphafold_config_file, load_config
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.model import params as P
from mindsponge_fold.model.alphafold import build_model


@pytest.mark.parametrize("name", ["model_1", "model_1_ptm", "model_3"])
def test_full_size_manifest_maps_one_to_one(name):
    manifest = json.loads(reference_path(f"manifest_{name}.json").read_text())
    model = build_model(load_config(name))
    table = P.param_table(model)
    shapes = {k: tuple(v["shape"]) for k, v in manifest["params"].items()}
    assert {row[0] for row in table} == set(shapes)                      # no name left over on either side
    assert all(shapes[official] == shape for official, _, shape in table)
    assert sum(int(np.prod(s)) for _, _, s in table) == manifest["num_parameters"]
    assert all(P.cell_name(official) == ours for official, ours, _ in table)   # the rule inverts


def test_wrong_weights_are_refused_with_one_line_reason():
    manifest = json.loads(reference_path("manifest_model_1_ptm.json").read_text())
    shapes = {k: tuple(v["shape"]) for k, v in manifest["params"].items()}
    with pytest.raises(InputError) as e:
        P.check_names(build_model(load_config("model_1")), shapes, "params_model_1_ptm.npz")
    msg = str(e.value)
    assert "\n" not in msg and "params_model_1_ptm.npz" in msg and "PAE head" in msg and "_ptm" in msg
    with pytest.raises(InputError, match="shape"):
        P.load_alphafold_params(build_model(load_config("model_1_ptm")), reference_path("params.npz"))


def test_npz_to_ckpt_to_npz_is_bit_exact(tmp_path):
    src = reference_path("params.npz")
    cfg = str(reference_path("config.json"))
    assert main(["convert-params", "--af-config", cfg, str(src), str(tmp_path / "w.ckpt")]) == 0
    assert main(["convert-params", "--af-config", cfg, str(tmp_path / "w.ckpt"), str(tmp_path / "back.npz")]) == 0
    with np.load(src) as a, np.load(tmp_path / "back.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            assert a[k].tobytes() == b[k].tobytes(), k
    # the checkpoint loads directly at inference too
    model = build_model(load_alphafold_config_file(cfg))
    P.load_weights(model, tmp_path / "w.ckpt")
    with np.load(src) as a:
        k = "alphafold/alphafold_iteration/structure_module/fold_iteration/affine_update//weights"
        np.testing.assert_array_equal(P.export_alphafold_params(model)[k], a[k])


def test_convert_refuses_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "params.npz"
    bad.write_text("not a zip")
    assert main(["convert-params", "--model", "tiny", str(bad), str(tmp_path / "o.ckpt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "params.npz" in err
    assert not (tmp_path / "o.ckpt").exists()


def test_table_is_stable_when_the_model_is_wrapped(tmp_path):
    """Wrapping the network (graph entry, training cells) renames Parameter.name; the table must not change."""
    from mindsponge_fold.model.alphafold import TupleOutput
    cfg = load_alphafold_config_file(reference_path("config.json"))
    model = build_model(cfg)
    before = P.param_table(model)
    TupleOutput(model)
    assert P.param_table(model) == before
    P.load_weights(model, reference_path("params.npz"))
    P.save_checkpoint(model, tmp_path / "w.ckpt")
    names = set(P.read_checkpoint(tmp_path / "w.ckpt"))
    assert {row[1] for row in before} <= names and not any(n.startswith("model.") for n in names)
