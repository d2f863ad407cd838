"""numpy / MindSpore twin modules: the same algorithms written twice, in numpy for the data pipeline, relax and
evaluation, and in MindSpore for the graph. Each pair is listed in ``TWINS``, names its twin in its module
docstring, and has one parity test comparing the two on the same inputs (here, or where ``TWINS`` says)."""
import ast

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from code_graph import REPO
from mindsponge_fold.common import all_atom as all_atom_np
from mindsponge_fold.common import geometry as geo_np
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.model import all_atom as all_atom_ms
from mindsponge_fold.model import geometry as geo_ms

ms.set_device("CPU")

# (numpy module, MindSpore module, its parity test)
TWINS = [
    ("mindsponge_fold.common.geometry", "mindsponge_fold.model.geometry",
     "tests/test_twins.py::test_geometry_twins_agree"),
    ("mindsponge_fold.common.all_atom", "mindsponge_fold.model.all_atom",
     "tests/test_twins.py::test_all_atom_twins_agree"),
    ("mindsponge_fold.common.violations", "mindsponge_fold.train.loss_violations",
     "tests/test_losses_parity.py::test_violations_match_numpy_twin"),
]


def _docstring(module: str) -> str:
    path = REPO / (module.replace(".", "/") + ".py")
    return ast.get_docstring(ast.parse(path.read_text())) or ""


@pytest.mark.parametrize("numpy_module,ms_module,parity_test", TWINS)
def test_twins_name_each_other_and_have_a_parity_test(numpy_module, ms_module, parity_test):
    assert ms_module in _docstring(numpy_module), f"{numpy_module}'s docstring does not name its twin {ms_module}"
    assert numpy_module in _docstring(ms_module), f"{ms_module}'s docstring does not name its twin {numpy_module}"
    test_file, test_name = parity_test.split("::")
    tree = ast.parse((REPO / test_file).read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == test_name for n in tree.body), parity_test


def _t(x):
    return Tensor(np.asarray(x, np.float32))


def _unit_quats(rng, n):
    q = rng.standard_normal((n, 4))
    return (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(np.float32)


def test_geometry_twins_agree():
    """Quaternions, rotations, rigid algebra, frames from 3 points and the backbone update: model.geometry on
    Tensors == common.geometry on arrays."""
    rng = np.random.default_rng(0)
    n = 6
    q, q2 = _unit_quats(rng, n), _unit_quats(rng, n)
    v, t, t2 = (rng.standard_normal((n, 3)).astype(np.float32) for _ in range(3))
    rot, rot2 = geo_np.quat_to_rot(q), geo_np.quat_to_rot(q2)
    close = dict(atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(geo_ms.quat_to_rot(_t(q)).asnumpy(), rot, **close)
    np.testing.assert_allclose(geo_ms.quat_multiply(_t(q), _t(q2)).asnumpy(), geo_np.quat_multiply(q, q2), **close)
    np.testing.assert_allclose(geo_ms.quat_multiply_by_vec(_t(q), _t(v)).asnumpy(),
                               geo_np.quat_multiply_by_vec(q, v), **close)
    np.testing.assert_allclose(geo_ms.rot_apply(_t(rot), _t(v)).asnumpy(), geo_np.apply_rot(rot, v), **close)
    np.testing.assert_allclose(geo_ms.rot_invert_apply(_t(rot), _t(v)).asnumpy(), geo_np.apply_inverse_rot(rot, v),
                               **close)
    a, b = geo_np.Rigid(rot, t), geo_np.Rigid(rot2, t2)
    ra, rb = (_t(rot), _t(t)), (_t(rot2), _t(t2))
    np.testing.assert_allclose(geo_ms.rigid_apply(ra, _t(v)).asnumpy(), a.apply(v), **close)
    np.testing.assert_allclose(geo_ms.rigid_invert_apply(ra, _t(v)).asnumpy(), a.invert_apply(v), **close)
    composed = geo_ms.rigid_compose(ra, rb)
    np.testing.assert_allclose(composed[0].asnumpy(), a.compose(b).rot, **close)
    np.testing.assert_allclose(composed[1].asnumpy(), a.compose(b).trans, **close)
    np.testing.assert_allclose(geo_ms.rigid_to_flat12(*ra).asnumpy(), a.to_flat12(), **close)
    back = geo_ms.rigid_from_flat12(_t(a.to_flat12()))
    np.testing.assert_allclose(back[0].asnumpy(), rot, **close)
    p1, p2, p3 = (rng.standard_normal((n, 3)).astype(np.float32) for _ in range(3))
    frame_ms = geo_ms.rigids_from_3_points(_t(p1), _t(p2), _t(p3))
    frame_np = geo_np.Rigid.from_3_points(p1, p2, p3)
    np.testing.assert_allclose(frame_ms[0].asnumpy(), frame_np.rot, **close)
    np.testing.assert_allclose(frame_ms[1].asnumpy(), frame_np.trans, **close)
    update = (0.3 * rng.standard_normal((n, 6))).astype(np.float32)
    q_new, rot_new, trans_new = geo_ms.quat_affine_pre_compose(_t(q), _t(rot), _t(t), _t(update))
    affine = geo_np.quat_affine_pre_compose(np.concatenate([q, t], -1), update)
    np.testing.assert_allclose(q_new.asnumpy(), affine[:, :4], **close)
    np.testing.assert_allclose(rot_new.asnumpy(), geo_np.quat_to_rot(affine[:, :4]), **close)
    np.testing.assert_allclose(trans_new.asnumpy(), affine[:, 4:], **close)


def test_all_atom_twins_agree():
    """Algorithm 24 (torsions -> rigid-group frames -> atom14 -> atom37): model.all_atom == common.all_atom on
    random residue types, backbone frames and torsion angles."""
    rng = np.random.default_rng(1)
    n = 12
    aatype = rng.integers(0, 20, n).astype(np.int32)
    trans = 10 * rng.standard_normal((n, 3)).astype(np.float32)
    backbone = geo_np.Rigid(geo_np.quat_to_rot(_unit_quats(rng, n)), trans)
    angles = rng.uniform(-np.pi, np.pi, (n, 7))
    sin_cos = np.stack([np.sin(angles), np.cos(angles)], -1).astype(np.float32)
    frames_np = all_atom_np.torsion_angles_to_frames(aatype, backbone, sin_cos)
    frames_ms = all_atom_ms.torsion_angles_to_frames(Tensor(aatype), (_t(backbone.rot), _t(backbone.trans)),
                                                     _t(sin_cos))
    close = dict(atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(frames_ms[0].asnumpy(), frames_np.rot, **close)
    np.testing.assert_allclose(frames_ms[1].asnumpy(), frames_np.trans, **close)
    atom14_np = all_atom_np.frames_and_literature_positions_to_atom14_pos(aatype, frames_np)
    atom14_ms = all_atom_ms.frames_and_literature_positions_to_atom14_pos(Tensor(aatype), frames_ms)
    np.testing.assert_allclose(atom14_ms.asnumpy(), atom14_np, **close)
    exists = rc.restype_atom37_mask[aatype].astype(np.float32)
    atom37_ms = all_atom_ms.atom14_to_atom37(_t(atom14_np), Tensor(aatype), _t(exists))
    np.testing.assert_allclose(atom37_ms.asnumpy(), all_atom_np.atom14_to_atom37(aatype, atom14_np) * exists[..., None],
                               **close)
