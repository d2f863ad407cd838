"""MSA feature transforms (numpy): restype mapping, profiles, block deletion, cluster sampling, BERT masking,
nearest-neighbour clustering of the extra MSA and the 49-channel ``msa_feat`` (supplement 1.2.6-1.2.7, Algorithm 1,
Table 1).

Each transform takes the feature dict, updates it in place and returns it. Random draws go through a
:class:`mindsponge_fold.data.rng.FeatureRNG` under the names of the reference trace (``msa_shuffle``,
``bert_uniform``, ``bert_categorical``, ``extra_shuffle``).
"""
from __future__ import annotations

import numpy as np

from mindsponge_fold.common import residue_constants as rc

# Per-row MSA features; sample_msa moves the rows it does not select into "extra_" + name.
MSA_FEATURE_NAMES = ("msa", "deletion_matrix", "msa_mask", "msa_row_mask", "bert_mask", "true_msa")

NUM_MSA_CLASSES = 23          # 20 amino acids, X, gap, BERT mask token
_CLUSTER_CHUNK_ELEMS = 1 << 22  # extra rows x residues x 21 per one-hot chunk in nearest_neighbor_clusters


def _hhblits_to_ours() -> np.ndarray:
    return np.asarray(rc.MAP_HHBLITS_AATYPE_TO_OUR_AATYPE, dtype=np.int32)


def correct_msa_restypes(f: dict) -> dict:
    """Map MSA ids from HHblits order (ACDEF...-) to AlphaFold's restype order; permute any profile alike."""
    new_order = _hhblits_to_ours()
    f["msa"] = new_order[np.asarray(f["msa"])].astype(np.int32)
    perm = np.zeros((22, 22), np.float32)
    perm[np.arange(len(new_order)), new_order] = 1.0
    for k in [k for k in f if "profile" in k]:
        n = f[k].shape[-1]
        if n not in (20, 21, 22):
            raise ValueError(f"profile feature '{k}' has {n} classes, expected 20, 21 or 22")
        f[k] = np.tensordot(f[k], perm[:n, :n], 1).astype(np.float32)
    return f


def make_msa_mask(f: dict) -> dict:
    """All-ones masks over MSA entries and rows (zero padding marks absent rows later)."""
    f["msa_mask"] = np.ones(f["msa"].shape, np.float32)
    f["msa_row_mask"] = np.ones(f["msa"].shape[:1], np.float32)
    return f


def make_hhblits_profile(f: dict) -> dict:
    """Per-column frequency of the 22 MSA classes over all rows (unless the input brings its own profile)."""
    if "hhblits_profile" in f:
        return f
    msa = np.asarray(f["msa"])
    num_seq, num_res = msa.shape
    counts = np.bincount((np.arange(num_res)[None, :] * 22 + msa).ravel(), minlength=num_res * 22)
    f["hhblits_profile"] = counts.reshape(num_res, 22).astype(np.float32) / np.float32(num_seq)
    return f


def gather_msa_rows(f: dict, rows: np.ndarray, prefix: str = "") -> dict:
    """Keep MSA rows ``rows`` (in that order) of every per-row feature ``prefix + name``."""
    for k in MSA_FEATURE_NAMES:
        if prefix + k in f:
            f[prefix + k] = f[prefix + k][rows]
    return f


def block_delete_msa(f: dict, msa_fraction_per_block: float, num_blocks: int, randomize_num_blocks: bool,
                     rng) -> dict:
    """MSABlockDeletion (supplement Algorithm 1): delete ``num_blocks`` blocks of contiguous rows, each
    ``floor(N * msa_fraction_per_block)`` long at a random start; the query row 0 is always kept."""
    num_seq = f["msa"].shape[0]
    block_len = int(np.floor(num_seq * msa_fraction_per_block))
    if randomize_num_blocks:
        nb = int(rng.integers("block_delete_num_blocks", 0, num_blocks + 1))
    else:
        nb = int(num_blocks)
    if num_seq <= 1 or block_len == 0 or nb == 0:
        return f
    starts = np.asarray(rng.integers("block_delete_starts", 0, num_seq, size=nb))
    deleted = np.clip(starts[:, None] + np.arange(block_len)[None, :], 0, num_seq - 1)
    keep = np.ones(num_seq, bool)
    keep[deleted.ravel()] = False
    keep[0] = True
    return gather_msa_rows(f, np.flatnonzero(keep))


def sample_msa(f: dict, max_seq: int, rng, keep_extra: bool = True) -> dict:
    """Choose the cluster centres: the query row then ``max_seq - 1`` random rows; the others become extra_*."""
    num_seq = f["msa"].shape[0]
    order = np.concatenate([[0], rng.shuffle("msa_shuffle", np.arange(1, num_seq))]).astype(np.int64)
    num_sel = min(max_seq, num_seq)
    selected, rest = order[:num_sel], order[num_sel:]
    for k in MSA_FEATURE_NAMES:
        if k in f:
            if keep_extra:
                f["extra_" + k] = f[k][rest]
            f[k] = f[k][selected]
    return f


def make_masked_msa(f: dict, profile_prob: float, same_prob: float, uniform_prob: float, replace_fraction: float,
                    rng) -> dict:
    """BERT-style corruption of the cluster MSA (supplement 1.2.7): each entry is picked with probability
    ``replace_fraction`` and replaced by a uniform amino acid, a draw from the column profile, itself, or the mask
    token (the remaining probability). ``true_msa`` keeps the original, ``bert_mask`` marks the picked entries."""
    msa = f["msa"]
    random_aa = np.array([0.05] * 20 + [0.0, 0.0], np.float32)
    one_hot = np.eye(22, dtype=np.float32)[msa]
    probs = (np.float32(uniform_prob) * random_aa + np.float32(profile_prob) * f["hhblits_profile"]
             + np.float32(same_prob) * one_hot)
    mask_prob = 1.0 - profile_prob - same_prob - uniform_prob
    if mask_prob < -1e-6:
        raise ValueError("masked_msa probabilities sum to more than 1")
    probs = np.concatenate([probs, np.full(probs.shape[:-1] + (1,), max(mask_prob, 0.0), np.float32)], -1)
    picked = rng.uniform("bert_uniform", msa.shape) < np.float32(replace_fraction)
    replacement = rng.categorical("bert_categorical", probs)
    f["bert_mask"] = picked.astype(np.float32)
    f["true_msa"] = msa
    f["msa"] = np.where(picked, replacement, msa).astype(np.int32)
    return f


def nearest_neighbor_clusters(f: dict) -> dict:
    """Assign each extra row to the cluster centre it agrees with at most positions (amino acids and X count;
    gaps and mask tokens do not); ties go to the lowest centre index."""
    msa, extra = f["msa"], f["extra_msa"]
    num_seq, num_res = msa.shape
    num_extra = extra.shape[0]
    if num_extra == 0:
        f["extra_cluster_assignment"] = np.zeros([0], np.int32)
        return f
    eye = np.eye(21, dtype=np.float32)

    def masked_one_hot(rows, mask):   # (n, L) -> (n, L*21), classes >= 21 (gap, mask token) give zeros
        oh = np.zeros(rows.shape + (21,), np.float32)
        real = rows < 21
        oh[real] = eye[rows[real]]
        return (oh * mask[..., None]).reshape(rows.shape[0], -1)

    centres = masked_one_hot(msa, f["msa_mask"])
    chunk = max(1, _CLUSTER_CHUNK_ELEMS // max(1, num_res * 21))
    assign = np.empty(num_extra, np.int32)
    for start in range(0, num_extra, chunk):
        sl = slice(start, start + chunk)
        agreement = masked_one_hot(extra[sl], f["extra_msa_mask"][sl]) @ centres.T
        assign[sl] = np.argmax(agreement, axis=1)
    f["extra_cluster_assignment"] = assign
    return f


def summarize_clusters(f: dict) -> dict:
    """Cluster profile (23 classes) and mean deletion count over each centre and its assigned extra rows."""
    msa = f["msa"]
    num_seq, num_res = msa.shape
    assign = f["extra_cluster_assignment"].astype(np.int64)
    mask = f["extra_msa_mask"]
    pos = assign[:, None] * num_res + np.arange(num_res)[None, :]        # (E, L) flat (centre, residue) index
    counts = np.bincount(pos.ravel(), weights=mask.ravel(), minlength=num_seq * num_res)
    counts = counts.reshape(num_seq, num_res).astype(np.float32)
    msa_sum = np.bincount((pos * NUM_MSA_CLASSES + f["extra_msa"]).ravel(), weights=mask.ravel(),
                          minlength=num_seq * num_res * NUM_MSA_CLASSES)
    msa_sum = msa_sum.reshape(num_seq, num_res, NUM_MSA_CLASSES).astype(np.float32)
    msa_sum += np.eye(NUM_MSA_CLASSES, dtype=np.float32)[msa]
    del_sum = np.bincount(pos.ravel(), weights=(mask * f["extra_deletion_matrix"]).ravel(),
                          minlength=num_seq * num_res)
    del_sum = del_sum.reshape(num_seq, num_res).astype(np.float32) + f["deletion_matrix"]
    mask_counts = np.float32(1e-6) + f["msa_mask"] + counts
    f["cluster_profile"] = msa_sum / mask_counts[:, :, None]
    f["cluster_deletion_mean"] = del_sum / mask_counts
    return f


def crop_extra_msa(f: dict, max_extra_msa: int, rng) -> dict:
    """Keep at most ``max_extra_msa`` extra rows, in random order (the shuffle happens even when all are kept)."""
    num_extra = f["extra_msa"].shape[0]
    rows = rng.shuffle("extra_shuffle", np.arange(num_extra))[:min(max_extra_msa, num_extra)]
    return gather_msa_rows(f, rows, prefix="extra_")


def delete_extra_msa(f: dict) -> dict:
    for k in MSA_FEATURE_NAMES:
        f.pop("extra_" + k, None)
    return f


def _deletion_transform(d: np.ndarray) -> np.ndarray:
    """Deletion counts squashed to [0, 1): 2/pi * arctan(d / 3) (supplement Table 1)."""
    return np.arctan(d / np.float32(3.0)) * np.float32(2.0 / np.pi)


def make_msa_feat(f: dict) -> dict:
    """``msa_feat`` (one-hot MSA 23, has_deletion, deletion_value, cluster profile 23, deletion_mean_value = 49)
    and ``target_feat`` (domain break flag, one-hot aatype 21 = 22); extra-MSA deletion features."""
    has_break = np.clip(f["between_segment_residues"].astype(np.float32), 0.0, 1.0)
    target_feat = [has_break[:, None], np.eye(21, dtype=np.float32)[f["aatype"]]]
    deletion = f["deletion_matrix"]
    msa_feat = [np.eye(NUM_MSA_CLASSES, dtype=np.float32)[f["msa"]],
                np.clip(deletion, 0.0, 1.0)[..., None], _deletion_transform(deletion)[..., None]]
    if "cluster_profile" in f:
        msa_feat += [f["cluster_profile"], _deletion_transform(f["cluster_deletion_mean"])[..., None]]
    if "extra_deletion_matrix" in f:
        f["extra_has_deletion"] = np.clip(f["extra_deletion_matrix"], 0.0, 1.0)
        f["extra_deletion_value"] = _deletion_transform(f["extra_deletion_matrix"])
    f["msa_feat"] = np.concatenate(msa_feat, axis=-1).astype(np.float32)
    f["target_feat"] = np.concatenate(target_feat, axis=-1).astype(np.float32)
    return f
