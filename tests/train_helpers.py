"""Shared inputs of the training tests: small real MindRecord data and the tiny training config.

Samples: ``2crb_A`` (the reference fixture's raw features, 97 residues) and ``1psm_A`` (38 residues, raw features
built here by the data pipeline from ../shared alignments + mmCIF labels). Templates are dropped: ``tiny_train``
does not use them.
"""
import numpy as np
from helpers import reference_path, shared_path

from mindsponge_fold.common.config import load_config

# The training tests' config: tiny_train with dropout off (deterministic losses: resume, data-parallel equality) and
# uniform sampling (each sample once per epoch: the tests that check sharding count on it; the weighted sampler of
# Suppl. 1.2.5 is tested in test_sampling.py).
TRAIN_OVERRIDES = ["train.dropout=false", "data.train.sampling=uniform"]


def train_config(extra=()):
    return load_config("tiny_train", TRAIN_OVERRIDES + list(extra))


def _no_templates(raw: dict) -> dict:
    return {k: v for k, v in raw.items() if not k.startswith("template_")}


def raw_2crb_a() -> dict:
    with np.load(reference_path("raw_features.npz")) as f:
        return _no_templates({k: f[k] for k in f.files})


def raw_1psm_a(tmp) -> dict:
    from mindsponge_fold.data import mmcif
    from mindsponge_fold.data.pipeline import DataPipeline
    data = shared_path("data", "openfold_testdata")
    cif = data / "mmcifs" / "1psm.cif"
    fasta = tmp / "1psm_A.fasta"
    fasta.write_text(f">1psm_A\n{mmcif.load_chain(cif, 'A').sequence}\n")
    raw = DataPipeline().process(fasta, data / "alignments" / "1psm_A", ground_truth=(cif, "A"))
    return _no_templates(raw)


def make_records(tmp, names=("2crb_A", "1psm_A")):
    """A one-shard MindRecord of the named samples under ``tmp``; returns its path."""
    from mindsponge_fold.data import mindrecord as mr
    src = tmp / "features"
    src.mkdir(parents=True, exist_ok=True)
    for name in names:
        raw = raw_2crb_a() if name == "2crb_A" else raw_1psm_a(tmp)
        np.savez(src / f"{name}.npz", **raw)
    out = tmp / ("_".join(names) + ".mindrecord")
    mr.convert(src, out, num_shards=1, progress=False)
    return out
