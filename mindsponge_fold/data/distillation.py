"""Self-distillation examples (Suppl. 1.3): a predicted structure as the training label of its sequence's features.

A prediction becomes a labelled raw-feature dict that ``make-mindrecord`` converts like a PDB chain:

* ``all_atom_positions`` = the predicted atom37 coordinates;
* ``all_atom_mask`` = the predicted atom mask with every atom of a residue whose pLDDT is below
  ``plddt_mask_threshold`` set to 0: low-confidence residues are masked out of the structural losses (FAPE,
  side chains, distogram, ...);
* ``resolution`` = 0 and ``is_distillation`` = 1: the heads AlphaFold trains on high-resolution PDB chains only
  (pLDDT, PAE, experimentally resolved) skip the example (:mod:`mindsponge_fold.train.losses`), and the training
  pipeline first subsamples its MSA (``data.train.max_distillation_msa``, :mod:`mindsponge_fold.data.transforms`).

Defaults (options of ``make-distillation-set`` / ``train``): residues with pLDDT < 50 are masked and the MSA keeps
1000 rows, the values of OpenFold's reproduction of this recipe (``self_distillation_plddt_threshold`` 50,
``max_distillation_msa_clusters`` 1000); 75 % of training examples are distillation ones (Suppl. 1.3).
``min_mean_plddt`` drops whole predictions by mean pLDDT (default 0: keep any prediction with one residue kept).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mindsponge_fold.common.errors import InputError

PLDDT_MASK_THRESHOLD = 50.0
LABEL_KEYS = ("all_atom_positions", "all_atom_mask", "resolution", "is_distillation")


@dataclass(frozen=True)
class DistillationFilter:
    """Which predictions (and residues) become distillation labels; pLDDT in [0, 100]."""
    plddt_mask_threshold: float = PLDDT_MASK_THRESHOLD    # residues below: masked out of the losses
    min_mean_plddt: float = 0.0                           # predictions below: not kept

    def __post_init__(self):
        for name in ("plddt_mask_threshold", "min_mean_plddt"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 100.0:
                raise InputError(f"--{name.replace('_', '-')} must be in [0, 100] (pLDDT), got {value}")

    def verdict(self, plddt) -> tuple[bool, str]:
        """(keep?, reason) for a prediction's per-residue pLDDT."""
        plddt = np.asarray(plddt, np.float64)
        mean = float(plddt.mean())
        if mean < self.min_mean_plddt:
            return False, f"mean pLDDT {mean:.1f} < {self.min_mean_plddt:g}"
        if not np.any(plddt >= self.plddt_mask_threshold):
            return False, f"no residue with pLDDT >= {self.plddt_mask_threshold:g}"
        return True, f"mean pLDDT {mean:.1f}"


def distillation_example(raw: dict, atom_positions, atom_mask, plddt,
                         plddt_mask_threshold: float = PLDDT_MASK_THRESHOLD) -> dict:
    """Raw features + the prediction (atom37 positions and mask, per-residue pLDDT; arrays may be padded past the
    sequence) -> a labelled distillation example (see the module docstring)."""
    num_res = int(np.asarray(raw["aatype"]).shape[0])
    plddt = np.asarray(plddt, np.float32)[:num_res]
    if plddt.shape[0] != num_res:
        raise ValueError(f"pLDDT of {plddt.shape[0]} residues for a sequence of {num_res}")
    confident = (plddt >= plddt_mask_threshold).astype(np.float32)
    out = {k: v for k, v in raw.items() if k not in LABEL_KEYS}
    out["all_atom_positions"] = np.asarray(atom_positions, np.float32)[:num_res]
    out["all_atom_mask"] = np.asarray(atom_mask, np.float32)[:num_res] * confident[:, None]
    out["resolution"] = np.asarray(0.0, np.float32)
    out["is_distillation"] = np.asarray(1.0, np.float32)
    return out
