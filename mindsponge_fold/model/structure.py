"""The structure module (Suppl. Alg. 20): invariant point attention, backbone updates and side chains.

Cells and attribute names follow AlphaFold's haiku modules (``structure_module/fold_iteration/
invariant_point_attention/q_scalar`` ...), so parameter names map to the official ones mechanically. The 8 layers
share one ``fold_iteration``. In training they are unrolled (a Python loop, one set of weights). At inference they run
in a graph ``while`` loop, which compiles the layer once (unrolled, the 8 layers cost ~11 s of compile time at
model_1_ptm widths, benchmarks/results/bench_af_modules.json): the per-layer outputs are written into buffers made
at run time (:func:`chunking.zeros_from`) with ``tensor_scatter_update``. Accumulating them in the loop instead
(``buffer + one_hot * value`` on buffers that were graph constants) made MindSpore 2.10 return the FIRST
execution's values when the compiled graph was re-executed; tests/test_model_graph_reuse.py guards against that and
tests/test_structure_module.py compares the loop with the unrolled layers. Internally backbone translations are in
units of ``position_scale`` (nm), as in AlphaFold; every output is in Angstrom. The geometry
(points, rotations, the attention softmax) is always float32.
"""
import math

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from mindsponge_fold.model import all_atom
from mindsponge_fold.model.chunking import zeros_from
from mindsponge_fold.model.kernels import transpose as T
from mindsponge_fold.model import geometry as g
from mindsponge_fold.model.primitives import LayerNorm, Linear, Module, SharedDropout, expand

F32 = ms.float32


def _chained_names(base, count):
    """Haiku's names for ``count`` modules created under one name: base, base_1, base_2, ..."""
    return tuple(base if k == 0 else f"{base}_{k}" for k in range(count))


class InvariantPointAttention(Module):
    """Suppl. Alg. 22: attention over residues whose logits mix scalar queries/keys, distances between query and
    key points placed by each residue's backbone frame, and a bias from the pair representation."""

    def __init__(self, ctx, config, c_s, c_z, dist_epsilon=1e-8):
        super().__init__(ctx)
        h, sqk, sv = config.num_head, config.num_scalar_qk, config.num_scalar_v
        pqk, pv = config.num_point_qk, config.num_point_v
        assert sqk > 0 and pqk > 0 and pv > 0
        self.h, self.sqk, self.sv, self.pqk, self.pv, self.c_z = h, sqk, sv, pqk, pv, c_z
        self.q_scalar = Linear(ctx, c_s, h * sqk)
        self.kv_scalar = Linear(ctx, c_s, h * (sv + sqk))
        self.q_point_local = Linear(ctx, c_s, h * 3 * pqk)
        self.kv_point_local = Linear(ctx, c_s, h * 3 * (pqk + pv))
        self.add_param("trainable_point_weights", (h,), float(np.log(np.exp(1.0) - 1.0)))   # softplus^-1(1)
        self.attention_2d = Linear(ctx, c_z, h)
        self.output_projection = Linear(ctx, h * (sv + 4 * pv + c_z), config.num_channel, "final")
        # equal variance for the scalar, point and pair terms (Suppl. 1.8.2)
        self.scalar_weight = math.sqrt(1.0 / (3 * sqk))
        self.point_weight = math.sqrt(1.0 / (3 * pqk * 9.0 / 2.0))
        self.attention_2d_weight = math.sqrt(1.0 / 3)
        self.dist_epsilon = float(dist_epsilon)
        self.bmm = ops.BatchMatMul()
        self.bmm_t = ops.BatchMatMul(transpose_b=True)
        self.bmm_ta = ops.BatchMatMul(transpose_a=True)

    def _points_global(self, rot, trans, local, n_points):
        """Local points [N, 3*H*P] (AlphaFold splits the channels into x, y, z thirds) -> global [N, 3, H, P]."""
        n = local.shape[0]
        local = local.astype(F32).reshape(n, 3, self.h * n_points)
        return (self.bmm(rot, local) + trans[:, :, None]).reshape(n, 3, self.h, n_points)

    def construct(self, act, pair_act, seq_mask, rot, trans):
        """act [N, c_s], pair_act [N, N, c_z], seq_mask [N], backbone frames rot [N, 3, 3], trans [N, 3] (nm)."""
        n = act.shape[0]
        h, sqk, sv, pqk, pv = self.h, self.sqk, self.sv, self.pqk, self.pv
        q_scalar = self.q_scalar(act).astype(F32).reshape(n, h, sqk)
        kv_scalar = self.kv_scalar(act).astype(F32).reshape(n, h, sv + sqk)
        k_scalar, v_scalar = kv_scalar[..., :sqk], kv_scalar[..., sqk:]
        q_point = self._points_global(rot, trans, self.q_point_local(act), pqk)             # [N, 3, H, Pqk]
        kv_point = self._points_global(rot, trans, self.kv_point_local(act), pqk + pv)     # [N, 3, H, Pqk+Pv]
        q_pts = T(q_point, (2, 0, 3, 1)).reshape(h, n, pqk * 3)
        k_pts = T(kv_point[..., :pqk], (2, 0, 3, 1)).reshape(h, n, pqk * 3)
        v_pts = T(kv_point[..., pqk:], (2, 0, 1, 3)).reshape(h, n, 3 * pv)

        point_weights = self.point_weight * ops.softplus(self.trainable_point_weights.astype(F32))     # [H]
        shape = (h, n, n, pqk * 3)
        diff = expand(q_pts[:, :, None, :], shape) - expand(k_pts[:, None, :, :], shape)
        attn_qk_point = expand(-0.5 * point_weights[:, None, None], (h, n, n)) * ops.sum(diff * diff, -1)   # [H, N, N]
        q = T(self.scalar_weight * q_scalar, (1, 0, 2))
        attn_logits = self.bmm_t(q, T(k_scalar, (1, 0, 2))) + attn_qk_point
        attention_2d = T(self.attention_2d(pair_act).astype(F32), (2, 0, 1))
        attn_logits = attn_logits + self.attention_2d_weight * attention_2d
        mask = seq_mask.astype(F32)
        attn_logits = attn_logits - expand(1e5 * (1.0 - mask[:, None] * mask[None, :]), (h, n, n))
        attn = ops.softmax(attn_logits, -1)                                                  # [H, N, N]

        result_scalar = T(self.bmm(attn, T(v_scalar, (1, 0, 2))), (1, 0, 2)).reshape(n, h * sv)
        result_global = T(self.bmm(attn, v_pts).reshape(h, n, 3, pv), (1, 2, 0, 3)).reshape(n, 3, h * pv)
        result_local = self.bmm_ta(rot, result_global - trans[:, :, None])                  # [N, 3, H*Pv]
        x, y, z = result_local[:, 0], result_local[:, 1], result_local[:, 2]
        norm = ops.sqrt(self.dist_epsilon + x * x + y * y + z * z)
        result_2d = self.bmm(T(attn, (1, 0, 2)), pair_act.astype(F32)).reshape(n, h * self.c_z)
        features = ops.concat([result_scalar, x, y, z, norm, result_2d], -1)
        return self.output_projection(features)


class MultiRigidSidechain(Module):
    """Suppl. Alg. 20 lines 11-14 (torsion angles from the single representation, a small ResNet) and Alg. 24
    (rigid-group frames and atom14 positions)."""

    def __init__(self, ctx, config, c_s):
        super().__init__(ctx)
        c = config.num_channel
        self.num_residual_block = int(config.num_residual_block)
        self.input_names = _chained_names("input_projection", 2)
        for name in self.input_names:
            setattr(self, name, Linear(ctx, c_s, c))
        self.resblock1_names = _chained_names("resblock1", self.num_residual_block)
        self.resblock2_names = _chained_names("resblock2", self.num_residual_block)
        for name1, name2 in zip(self.resblock1_names, self.resblock2_names):
            setattr(self, name1, Linear(ctx, c, c, "relu"))
            setattr(self, name2, Linear(ctx, c, c, "final"))
        self.unnormalized_angles = Linear(ctx, c, 14)

    def construct(self, backb_rot, backb_trans, act, initial_act, aatype):
        """Backbone frames (translation in Angstrom), act and initial_act [N, c_s], aatype [N].
        Returns (angles [N, 7, 2], unnormalized [N, 7, 2], frames [N, 8, 12] flat, atom14 positions [N, 14, 3])."""
        n = act.shape[0]
        x = self.input_projection(ops.relu(act)) + self.input_projection_1(ops.relu(initial_act))
        for name1, name2 in zip(self.resblock1_names, self.resblock2_names):
            old = x
            x = getattr(self, name1)(ops.relu(x))
            x = getattr(self, name2)(ops.relu(x))
            x = x + old
        unnormalized = self.unnormalized_angles(ops.relu(x)).astype(F32).reshape(n, 7, 2)
        norm2 = ops.sum(unnormalized * unnormalized, -1, keepdim=True)
        angles = unnormalized / ops.sqrt(ops.maximum(norm2, 1e-12))
        frames = all_atom.torsion_angles_to_frames(aatype, (backb_rot, backb_trans), angles)
        atom_pos = all_atom.frames_and_literature_positions_to_atom14_pos(aatype, frames)
        return angles, unnormalized, g.rigid_to_flat12(frames[0], frames[1]), atom_pos


class FoldIteration(Module):
    """One structure-module layer (Suppl. Alg. 20 lines 6-21): IPA, transition, backbone update (Alg. 23),
    side chains."""

    def __init__(self, ctx, config, c_s, c_z):
        super().__init__(ctx)
        c = config.num_channel
        self.invariant_point_attention = InvariantPointAttention(ctx, config, c, c_z)
        self.attention_layer_norm = LayerNorm(ctx, c)
        n_trans = int(config.num_layer_in_transition)
        self.transition_names = _chained_names("transition", n_trans)
        for k, name in enumerate(self.transition_names):
            setattr(self, name, Linear(ctx, c, c, "relu" if k < n_trans - 1 else "final"))
        self.transition_layer_norm = LayerNorm(ctx, c)
        self.affine_update = Linear(ctx, c, 6, "final")
        self.rigid_sidechain = MultiRigidSidechain(ctx, config.sidechain, c)
        # AlphaFold drops out (unshared) after the attention and after the transition of every layer, in training
        # only: its safe_dropout_fn follows is_training, which eval_dropout does not override (folding.py)
        layers = (int(config.num_layer),)
        self.attention_dropout = SharedDropout(ctx, config.dropout, None, key="structure_module/attention",
                                               dims=("N", int(c)), stack=layers, at_inference=False)
        self.transition_dropout = SharedDropout(ctx, config.dropout, None, key="structure_module/transition",
                                                dims=("N", int(c)), stack=layers, at_inference=False)
        self.position_scale = float(config.position_scale)
        self.last_transition = n_trans - 1

    def construct(self, act, initial_act, pair_act, seq_mask, aatype, quat, trans, drop=None, layer=0):
        rot = g.quat_to_rot(quat)
        act = act + self.invariant_point_attention(act, pair_act, seq_mask, rot, trans)
        act = self.attention_layer_norm(self.attention_dropout(act, drop, layer))
        input_act = act
        for k, name in enumerate(self.transition_names):
            act = getattr(self, name)(act)
            if k < self.last_transition:
                act = ops.relu(act)
        act = self.transition_layer_norm(self.transition_dropout(act + input_act, drop, layer))
        update = self.affine_update(act).astype(F32)
        quat, rot, trans = g.quat_affine_pre_compose(quat, rot, trans, update)
        sidechain = self.rigid_sidechain(rot, trans * self.position_scale, act, initial_act, aatype)
        return (act, quat, trans) + sidechain


class StructureModule(Module):
    """Suppl. Alg. 20 as AlphaFold's ``folding.StructureModule`` head (eval and training mode).

    construct(single [N, c_s], pair [N, N, c_z], batch) with batch keys ``aatype`` [N], ``seq_mask`` [N],
    ``atom14_atom_exists`` [N, 14], ``atom37_atom_exists`` [N, 37] (the atom14 -> atom37 map is the residue type's,
    i.e. what ``residx_atom37_to_atom14`` holds). Returns a dict: 'act' [N, c], 'traj' [L, N, 7] (quaternion,
    translation in A), 'final_affines' [N, 7], 'sidechains/frames' [L, N, 8, 12], 'sidechains/atom_pos'
    [L, N, 14, 3], 'sidechains/angles_sin_cos' and 'sidechains/unnormalized_angles_sin_cos' [L, N, 7, 2],
    'final_atom14_positions', 'final_atom14_mask', 'final_atom_positions' [N, 37, 3], 'final_atom_mask'.

    When this Cell is itself the top-level graph, pass ``ms.mutable(batch)``: a plain dict input is a compile-time
    constant in graph mode, so every new batch would recompile.
    """

    def __init__(self, sm_config, ctx, seq_channel, pair_channel):
        ctx = ctx.family("structure_module")
        super().__init__(ctx)
        c = sm_config.num_channel
        self.single_layer_norm = LayerNorm(ctx, seq_channel)
        self.initial_projection = Linear(ctx, seq_channel, c)
        self.pair_layer_norm = LayerNorm(ctx, pair_channel)
        self.fold_iteration = FoldIteration(ctx, sm_config, c, pair_channel)
        self.num_layer = int(sm_config.num_layer)
        self.position_scale = float(sm_config.position_scale)
        self.traj_scale = Tensor(np.array([1.0] * 4 + [self.position_scale] * 3, np.float32))
        self.unroll = False        # True: unrolled at inference too (tests compare the two)

    def _layers_unrolled(self, act, initial_act, pair_act, seq_mask, aatype, quat, trans, drop):
        traj, angles, unnormalized, frames, atom_pos = [], [], [], [], []
        for layer in range(self.num_layer):      # shared weights
            out = self.fold_iteration(act, initial_act, pair_act, seq_mask, aatype, quat, trans, drop, layer)
            act, quat_new, trans = out[0], out[1], out[2]
            traj.append(ops.concat([quat_new, trans], -1) * self.traj_scale)
            angles.append(out[3])
            unnormalized.append(out[4])
            frames.append(out[5])
            atom_pos.append(out[6])
            # AlphaFold stops the gradient through the rotation between layers (not the translation)
            quat = ops.stop_gradient(quat_new)
        return (act, ops.stack(traj), ops.stack(angles), ops.stack(unnormalized), ops.stack(frames),
                ops.stack(atom_pos))

    def _layers_loop(self, act, initial_act, pair_act, seq_mask, aatype, quat, trans, drop):
        """The layers in a graph ``while`` loop (inference): per-layer outputs written into run-time buffers."""
        n, layers = act.shape[0], self.num_layer
        traj = zeros_from(trans, (layers, n, 7), F32)
        angles = zeros_from(trans, (layers, n, 7, 2), F32)
        unnormalized = zeros_from(trans, (layers, n, 7, 2), F32)
        frames = zeros_from(trans, (layers, n, 8, 12), F32)
        atom_pos = zeros_from(trans, (layers, n, 14, 3), F32)
        layer = Tensor(0, ms.int32)
        while layer < layers:
            out = self.fold_iteration(act, initial_act, pair_act, seq_mask, aatype, quat, trans, drop, layer)
            act, quat, trans = out[0], out[1], out[2]
            at = layer.reshape(1, 1)
            traj = ops.tensor_scatter_update(traj, at, (ops.concat([quat, trans], -1) * self.traj_scale)[None])
            angles = ops.tensor_scatter_update(angles, at, out[3].astype(F32)[None])
            unnormalized = ops.tensor_scatter_update(unnormalized, at, out[4].astype(F32)[None])
            frames = ops.tensor_scatter_update(frames, at, out[5].astype(F32)[None])
            atom_pos = ops.tensor_scatter_update(atom_pos, at, out[6].astype(F32)[None])
            layer = layer + 1
        return act, traj, angles, unnormalized, frames, atom_pos

    def construct(self, single, pair, batch, drop=None):
        aatype = batch["aatype"]
        seq_mask = batch["seq_mask"].astype(F32)
        n = single.shape[0]
        act = self.single_layer_norm(single.astype(self.dtype))
        initial_act = act
        act = self.initial_projection(act)
        pair_act = self.pair_layer_norm(pair.astype(self.dtype))
        quat = ops.concat([ops.ones((n, 1), F32), ops.zeros((n, 3), F32)], -1)
        trans = ops.zeros((n, 3), F32)
        layers = self.num_layer
        if self.training or self.unroll:
            act, traj, angles, unnormalized, frames, atom_pos = self._layers_unrolled(
                act, initial_act, pair_act, seq_mask, aatype, quat, trans, drop)
        else:
            act, traj, angles, unnormalized, frames, atom_pos = self._layers_loop(
                act, initial_act, pair_act, seq_mask, aatype, quat, trans, drop)
        final_atom14 = atom_pos[layers - 1]
        atom37_exists = batch["atom37_atom_exists"].astype(F32)
        final_atom37 = all_atom.atom14_to_atom37(final_atom14, aatype, atom37_exists)
        return {
            "act": act,
            "traj": traj,
            "final_affines": traj[layers - 1],
            "sidechains/frames": frames,
            "sidechains/atom_pos": atom_pos,
            "sidechains/angles_sin_cos": angles,
            "sidechains/unnormalized_angles_sin_cos": unnormalized,
            "final_atom14_positions": final_atom14,
            "final_atom14_mask": batch["atom14_atom_exists"].astype(F32),
            "final_atom_positions": final_atom37,
            "final_atom_mask": atom37_exists,
        }
