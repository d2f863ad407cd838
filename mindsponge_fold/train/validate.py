"""Periodic validation during training: lDDT-Calpha of the model's predictions on a held-out split.

The held-out split is a ``make-mindrecord`` output (``--val-data``) whose samples have labels. Each sample is
processed once in inference mode (``process_features(..., "eval")``, fixed seed) and predicted with the inference
path (:class:`mindsponge_fold.model.runner.ModelRunner`: compiled graph, host recycling, length buckets) using the
weights handed in (the EMA weights by default, ``train.eval_use_ema``). The score is the OpenStructure-style
lDDT (:func:`mindsponge_fold.common.lddt.lddt`) on Calpha atoms against the native coordinates.
"""
from __future__ import annotations

import numpy as np

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.lddt import lddt

CA = rc.atom_order["CA"]


def lddt_ca(predicted_positions, native_positions, native_mask) -> float:
    """Global lDDT on Calpha: predicted [N, 37, 3] (every residue predicted) vs native [N, 37, 3] + mask [N, 37]."""
    pred = np.asarray(predicted_positions)[:, CA:CA + 1]
    native = np.asarray(native_positions)[:, CA:CA + 1]
    mask = np.asarray(native_mask)[:, CA:CA + 1]
    return float(lddt(pred, np.ones_like(mask), native, mask).score)


class Validator:
    """Holds the processed held-out samples and an inference runner; :meth:`evaluate` scores a weight set."""

    def __init__(self, cfg, samples: dict, seed: int = 0, max_samples: int = 0):
        from mindsponge_fold.data.rng import NumpyRNG
        from mindsponge_fold.data.transforms import process_features
        from mindsponge_fold.model.runner import ModelRunner
        names = sorted(samples)
        if max_samples:
            names = names[:max_samples]
        self.features, self.natives = {}, {}
        for name in names:
            raw = samples[name]
            if "all_atom_positions" not in raw or "all_atom_mask" not in raw:
                raise InputError(f"validation sample '{name}' has no labels (all_atom_positions/all_atom_mask)")
            self.features[name] = process_features(raw, cfg, "eval", NumpyRNG(seed), source=f"record '{name}'")
            self.natives[name] = (np.asarray(raw["all_atom_positions"]), np.asarray(raw["all_atom_mask"]))
        if not self.features:
            raise InputError("validation data holds no samples")
        self.runner = ModelRunner(cfg, None, bucket=True)
        # recycle no more often than training does: a network trained without recycling has never seen recycled
        # inputs (its recycling embedder is untrained), and more recycles than trained only add noise
        self.num_recycle = min(int(cfg.model.num_recycle), int(cfg.train.max_recycle))

    @classmethod
    def from_mindrecord(cls, cfg, path, seed: int = 0, max_samples: int = 0) -> "Validator":
        from mindsponge_fold.data.mindrecord import read_samples
        return cls(cfg, read_samples(path), seed, max_samples)

    def set_weights(self, weights: dict) -> None:
        """``weights``: Cell names relative to the model (:func:`mindsponge_fold.model.params.model_parameters`),
        strict on names and shapes, written in place into the (compiled) inference network."""
        from mindsponge_fold.model.params import check_names, model_parameters, official_name
        from mindsponge_fold.train.step import assign
        check_names(self.runner.model, {official_name(n): np.shape(v) for n, v in weights.items()}, "training weights")
        for name, p in model_parameters(self.runner.model).items():
            assign(p, weights[name])

    def evaluate(self, weights: dict) -> dict:
        """``weights``: model-relative Cell name -> array.
        Returns ``{"val/lddt_ca": mean, "val/per_sample": {...}}``."""
        self.set_weights(weights)
        per = {}
        for name, features in self.features.items():
            out, _ = self.runner.run(features, num_recycle=self.num_recycle)
            per[name] = lddt_ca(out["structure_module/final_atom_positions"], *self.natives[name])
        return {"val/lddt_ca": float(np.mean(list(per.values()))), "val/per_sample": per}
