"""AlphaFold 2 training loss (Suppl. 1.9, eq. 7) as one graph-compilable MindSpore Cell, always float32.

    loss = 0.5 L_FAPE(backbone, mean over layers) + 0.5 L_FAPE(all atom) + 0.5 L_chi + 0.01 L_anglenorm
           + L_viol                                                           (structure module, weight 1.0)
         + 0.3 L_dist + 2.0 L_msa + 0.01 L_conf + 0.1 L_PAE + 0.01 L_resolved   (heads)

with every weight taken from ``config.model.heads`` (a head with weight 0 is absent, as in AlphaFold).

``AlphaFoldLoss(model_config, ctx).construct(outputs, batch) -> (total, terms)``:

* ``outputs``: the model's predictions keyed by the flat fixture names: 'structure_module/traj' [L, N, 7]
  (QuatAffine, Angstrom), 'structure_module/sidechains/frames' [L, N, 8, 12], '.../sidechains/atom_pos'
  [L, N, 14, 3], '.../sidechains/angles_sin_cos' and '.../unnormalized_angles_sin_cos' [L, N, 7, 2],
  'structure_module/final_atom14_positions' [N, 14, 3], 'structure_module/final_atom_positions' [N, 37, 3],
  'distogram/logits' + 'distogram/bin_edges', 'masked_msa/logits', 'predicted_lddt/logits',
  'experimentally_resolved/logits', 'predicted_aligned_error/logits' + '.../breaks' (only for enabled heads).
  The PAE loss uses the last layer of the trajectory as the final backbone frames.
* ``batch``: processed features of the iteration (aatype, seq_mask, residue_index, atom14_atom_exists,
  residx_atom14_to_atom37, atom37_atom_exists, true_msa, bert_mask, optional seq_length) + ground truth
  (ground_truth.npz names) + resolution + optional use_clamped_fape (absent -> clamped backbone FAPE) + optional
  is_distillation (1: the resolution-gated heads are skipped).
  No batch axis (as inside AlphaFoldIteration).
* ``total`` = loss/total = sum over heads of weight * loss (AlphaFold's order of summation). With
  ``crop_size`` set, the returned total is additionally multiplied by sqrt(min(seq_length, crop_size))
  (:func:`length_scaled_loss`, the training-time scaling of Suppl. 1.9); terms['loss/total'] stays unscaled.
* ``terms``: 'loss/<head>' per head, the structure-module sub-terms (fape, sidechain_fape, chi_loss,
  angle_norm_loss, metrics/violations_*, backbone_fape_per_layer_clamped/unclamped,
  backbone_fape_mean_over_layers, structural_violation), 'structure_module/alt_naming_is_better',
  'structure_module/renamed_atom14_gt_positions/_exists', 'structure_module/violations/...',
  'distogram/true_dist', 'predicted_lddt/lddt_ca'.
"""
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.train import loss_fape as lf
from mindsponge_fold.train import loss_heads as lh
from mindsponge_fold.train.loss_violations import StructuralViolations, violation_loss, violation_metrics

SM = "structure_module/"
SM_LOSS = "loss/structure_module/"


def length_scaled_loss(total, seq_length, crop_size):
    """Training-time scaling of the summed loss by sqrt(min(N_res, crop_size)) (Suppl. 1.9).

    ``seq_length``: residues of the (cropped) example, a scalar tensor or number; ``crop_size``: the padded
    N_res of the batch. The fixture's loss/total is the unscaled value.
    """
    n = ops.minimum(ops.cast(seq_length, ms.float32), float(crop_size))
    return total * ops.sqrt(n)


def _cfg(config, key, default=None):
    return config[key] if key in config else default


class AlphaFoldLoss(nn.Cell):
    """All AlphaFold 2 losses of one recycling iteration (see the module docstring).

    ``model_config``: the config's ``model`` section (or the whole config); ``ctx``: the ModelContext (losses run
    in float32 whatever its dtype); ``crop_size``: when given, the returned total is length-scaled.
    """

    def __init__(self, model_config, ctx=None, crop_size=None):
        super().__init__()
        if "model" in model_config:
            model_config = model_config["model"]
        heads = model_config["heads"]
        del ctx     # the losses always run in float32, whatever the model's compute dtype
        self.weights = {name: float(h["weight"]) for name, h in heads.items()}
        enabled = sorted(name for name, w in self.weights.items() if w)
        # AlphaFoldIteration's order of summation: heads sorted by name, pLDDT and PAE after the structure module
        late = ("predicted_lddt", "predicted_aligned_error")
        self.order = tuple([n for n in enabled if n not in late] + [n for n in late if n in enabled])
        self.crop_size = None if crop_size is None else int(crop_size)

        sm = heads["structure_module"]
        self.fape_clamp = float(sm["fape"]["clamp_distance"])
        self.fape_unit = float(sm["fape"]["loss_unit_distance"])
        self.sc_clamp = float(sm["sidechain"]["atom_clamp_distance"])
        self.sc_unit = float(sm["sidechain"]["length_scale"])
        self.sc_weight_frac = float(sm["sidechain"]["weight_frac"])
        self.chi_weight = float(sm["chi_weight"])
        self.angle_norm_weight = float(sm["angle_norm_weight"])
        self.violation_weight = float(_cfg(sm, "structural_violation_loss_weight", 0.0))
        self.in_graph_metrics = bool(_cfg(sm, "compute_in_graph_metrics", True))
        self.violations = StructuralViolations(sm)
        self.chi_pi_periodic = Tensor(np.asarray(rc.chi_pi_periodic, np.float32))      # [21, 4]

        self.distogram_bins = int(heads["distogram"]["num_bins"])
        self.msa_classes = int(heads["masked_msa"]["num_output"])
        self.plddt_bins = int(heads["predicted_lddt"]["num_bins"])
        self.pae_bins = int(heads["predicted_aligned_error"]["num_bins"]) if "predicted_aligned_error" in heads else 0
        self.resolution_windows = {}
        for name in ("predicted_lddt", "predicted_aligned_error", "experimentally_resolved"):
            h = heads[name] if name in heads else {}
            if _cfg(h, "filter_by_resolution", False):
                self.resolution_windows[name] = (float(h["min_resolution"]), float(h["max_resolution"]))

    # ------------------------------------------------------------------------------------------------------------
    def _resolution_gate(self, name, loss, batch):
        """The heads AlphaFold trains on high-resolution PDB chains only (pLDDT, PAE, experimentally resolved:
        Suppl. 1.9.6, 1.9.7, 1.9.10): zero outside the resolution window, and for self-distillation examples
        (``is_distillation`` 1; they also carry resolution 0, Suppl. 1.3)."""
        if name in self.resolution_windows:
            lo, hi = self.resolution_windows[name]
            loss = loss * lh.resolution_filter(batch["resolution"].astype(ms.float32), lo, hi)
            if "is_distillation" in batch:
                loss = loss * (1.0 - batch["is_distillation"].astype(ms.float32))
        return loss

    def structure_module_loss(self, outputs, batch):
        """StructureModule.loss: backbone FAPE over layers, side-chain FAPE, chi and angle-norm, violations.

        Returns (loss, terms)."""
        f32 = ms.float32
        terms = {}
        final14 = outputs[SM + "final_atom14_positions"].astype(f32)
        # the ground-truth naming closest to the prediction (Alg. 26), used by every loss that follows
        renamed = lf.renamed_ground_truth(batch, final14)

        violations = None
        if self.in_graph_metrics or self.violation_weight:
            violations = self.violations(batch, final14)
        if self.in_graph_metrics:
            metrics = violation_metrics(batch, final14, violations)
            for k, v in metrics.items():
                terms[SM_LOSS + "metrics/" + k] = v

        clamped, unclamped = lf.backbone_fape_per_layer(
            outputs[SM + "traj"].astype(f32), batch["backbone_affine_tensor"], batch["backbone_affine_mask"],
            self.fape_clamp, self.fape_unit)
        if "use_clamped_fape" in batch:
            fape = lf.mix_clamped_fape(clamped, unclamped, batch["use_clamped_fape"].astype(f32))
        else:
            fape = clamped
        backbone = fape.mean()
        sc_fape = lf.sidechain_fape(batch, renamed, outputs[SM + "sidechains/frames"][-1].astype(f32),
                                    outputs[SM + "sidechains/atom_pos"][-1].astype(f32),
                                    self.sc_clamp, self.sc_unit)
        loss = (1.0 - self.sc_weight_frac) * backbone + self.sc_weight_frac * sc_fape

        chi_periodic = ops.gather(self.chi_pi_periodic, ops.clamp(batch["aatype"], 0, 20), 0)
        chi_loss, angle_norm_loss = lf.torsion_angle_loss(
            outputs[SM + "sidechains/angles_sin_cos"].astype(f32),
            outputs[SM + "sidechains/unnormalized_angles_sin_cos"].astype(f32),
            batch["chi_angles"], batch["chi_mask"].astype(f32), chi_periodic, batch["seq_mask"])
        loss = loss + self.chi_weight * chi_loss
        loss = loss + self.angle_norm_weight * angle_norm_loss

        if violations is not None:
            viol = violation_loss(violations, batch["atom14_atom_exists"].astype(f32))
            terms[SM_LOSS + "structural_violation"] = viol
            for k, v in violations.items():
                terms[SM + "violations/" + k] = v
            if self.violation_weight:
                loss = loss + self.violation_weight * viol

        terms[SM_LOSS + "fape"] = fape[-1]
        terms[SM_LOSS + "sidechain_fape"] = sc_fape
        terms[SM_LOSS + "chi_loss"] = chi_loss
        terms[SM_LOSS + "angle_norm_loss"] = angle_norm_loss
        terms[SM_LOSS + "backbone_fape_per_layer_clamped"] = clamped
        terms[SM_LOSS + "backbone_fape_per_layer_unclamped"] = unclamped
        terms[SM_LOSS + "backbone_fape_mean_over_layers"] = backbone
        for k, v in renamed.items():
            terms[SM + k] = v
        return loss, terms

    def head_loss(self, name, outputs, batch):
        """Loss of one auxiliary head, before its weight (resolution filter applied), and its extra outputs."""
        f32 = ms.float32
        terms = {}
        if name == "distogram":
            loss, true_dist = lh.distogram_loss(outputs["distogram/logits"].astype(f32),
                                                outputs["distogram/bin_edges"].astype(f32),
                                                batch["pseudo_beta"], batch["pseudo_beta_mask"], self.distogram_bins)
            terms["distogram/true_dist"] = true_dist
        elif name == "masked_msa":
            loss = lh.masked_msa_loss(outputs["masked_msa/logits"].astype(f32), batch["true_msa"],
                                      batch["bert_mask"].astype(f32), self.msa_classes)
        elif name == "predicted_lddt":
            loss, lddt_ca = lh.predicted_lddt_loss(outputs["predicted_lddt/logits"].astype(f32),
                                                   outputs[SM + "final_atom_positions"].astype(f32),
                                                   batch["all_atom_positions"], batch["all_atom_mask"].astype(f32),
                                                   self.plddt_bins)
            terms["predicted_lddt/lddt_ca"] = lddt_ca
        elif name == "predicted_aligned_error":
            pred = lf.rigid_from_quat_affine(outputs[SM + "traj"][-1].astype(f32))
            true = lf.rigid_from_quat_affine(batch["backbone_affine_tensor"])
            loss = lh.predicted_aligned_error_loss(outputs["predicted_aligned_error/logits"].astype(f32),
                                                   outputs["predicted_aligned_error/breaks"].astype(f32),
                                                   pred, true, batch["backbone_affine_mask"], self.pae_bins)
        else:   # experimentally_resolved
            loss = lh.experimentally_resolved_loss(outputs["experimentally_resolved/logits"].astype(f32),
                                                   batch["all_atom_mask"].astype(f32),
                                                   batch["atom37_atom_exists"].astype(f32))
        return self._resolution_gate(name, loss, batch), terms

    def construct(self, outputs, batch):
        terms = {}
        total = 0.0
        for name in self.order:
            if name == "structure_module":
                loss, extra = self.structure_module_loss(outputs, batch)
            else:
                loss, extra = self.head_loss(name, outputs, batch)
            terms.update(extra)
            terms["loss/" + name] = loss
            total = total + self.weights[name] * loss
        terms["loss/total"] = total
        if self.crop_size is not None:
            if "seq_length" in batch:
                n_res = batch["seq_length"]
            else:
                n_res = batch["seq_mask"].sum()
            total = length_scaled_loss(total, n_res, self.crop_size)
        return total, terms
