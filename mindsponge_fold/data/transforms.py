"""AlphaFold feature processing in numpy: raw features (data pipeline output) -> the model's input batch, for
inference ("eval", AlphaFold's ``np_example_to_features``) and for training (crops, MSA block deletion, template
subsampling, loss targets).

Output: a dict keyed by AlphaFold feature names whose arrays have a leading batch axis, one batch per recycling
iteration (and ensemble member) when MSAs are resampled per iteration (supplement 1.10, 1.11.2). Stages:

1. per sample (``prepare_sample``): validation, squeeze/cast, sequence and MSA masks, HHblits profile,
   (training) MSA block deletion, template mapping/selection/pseudo-beta, atom14/atom37 masks, (training) ground
   truth and crop choice;
2. per batch (``make_batch``): cluster sampling, BERT masking, nearest-neighbour clustering, extra-MSA crop,
   ``msa_feat``/``target_feat``, crop and fixed-size padding (shape table in
   :mod:`mindsponge_fold.data.feature_shapes`).

Randomness comes from a :class:`mindsponge_fold.data.rng.FeatureRNG`: seeded numpy, or a replay of the reference's
trace (``rng_trace.npz``) which reproduces ``processed_features.npz`` exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mindsponge_fold.common import all_atom
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import crop as crop_lib
from mindsponge_fold.data import derived_features
from mindsponge_fold.data import feature_shapes as fs
from mindsponge_fold.data import transforms_msa as tm
from mindsponge_fold.data import transforms_templates as tt
from mindsponge_fold.data.rng import FeatureRNG, NumpyRNG

# Alternative names of raw features in older AlphaFold/OpenFold feature pickles.
RAW_ALIASES = {"template_all_atom_mask": "template_all_atom_masks"}
REQUIRED_RAW = ("aatype", "residue_index", "msa", "deletion_matrix_int")
LABEL_FEATURES = ("all_atom_positions", "all_atom_mask")

# Model inputs the pipeline makes (names of feature_shapes.INPUT_FEATURES); see output_feature_names.
BASE_INPUTS = ("aatype", "residue_index", "seq_length", "seq_mask", "target_feat", "msa_feat", "msa_mask",
               "msa_row_mask", "bert_mask", "true_msa", "atom14_atom_exists", "residx_atom14_to_atom37",
               "residx_atom37_to_atom14", "atom37_atom_exists", "is_distillation", "random_crop_to_size_seed")
TEMPLATE_INPUTS = ("template_aatype", "template_all_atom_masks", "template_all_atom_positions", "template_mask",
                   "template_pseudo_beta", "template_pseudo_beta_mask", "template_sum_probs")
EXTRA_MSA_INPUTS = ("extra_msa", "extra_msa_mask", "extra_msa_row_mask", "extra_has_deletion",
                    "extra_deletion_value")


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the feature pipeline reads from the config, for one mode ("eval" or "train")."""
    mode: str
    num_batches: int                 # batches made (recycling iterations x ensemble when resampling)
    repeat_batches: int              # training without resampling: the one batch is repeated this many times
    max_msa_clusters: int            # N_seq (already reduced by max_templates when configured)
    max_extra_msa: int               # N_extra
    max_templates: int               # N_templ
    use_templates: bool
    subsample_templates: bool
    filter_templates: bool           # training: transforms_templates.training_template_rows
    msa_cluster_features: bool
    masked_msa: tuple                # (profile_prob, same_prob, uniform_prob)
    replace_fraction: float
    crop_size: int | None            # None: keep every residue
    spatial_crop_prob: float
    block_delete: dict | None        # MSA block deletion parameters (training)
    fape_clamp_prob: float | None    # training: P(use_clamped_fape = 1)
    max_distillation_msa: int | None = None   # training: MSA rows kept of a distillation example (None: all)


def settings_from_config(cfg, mode: str = "eval") -> PipelineSettings:
    """Read ``data.common`` + ``data.<mode>`` (and ``model.num_recycle`` at inference, ``train.max_recycle`` /
    ``fape_clamp_prob`` when training)."""
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    common, m = cfg.data.common, cfg.data[mode]
    clusters = m.max_msa_clusters - (m.max_templates if common.reduce_msa_clusters_by_max_templates else 0)
    mm = common.masked_msa
    if mode == "eval":
        iterations = (cfg.model.num_recycle + 1) if common.resample_msa_in_recycling else 1
        num_batches, repeat, max_extra = m.num_ensemble * iterations, 1, common.max_extra_msa
        crop_size, spatial, block_delete, clamp = m.crop_size, 0.0, None, None
    else:
        iterations = cfg.train.max_recycle + 1
        num_batches = iterations if common.resample_msa_in_recycling else 1
        repeat = 1 if common.resample_msa_in_recycling else iterations
        max_extra, crop_size, spatial = m.max_extra_msa, m.crop_size, m.spatial_crop_prob
        block_delete, clamp = dict(m.block_delete_msa), cfg.train.fape_clamp_prob
    distillation_msa = m.max_distillation_msa if mode == "train" else None
    return PipelineSettings(
        mode=mode, num_batches=num_batches, repeat_batches=repeat, max_msa_clusters=clusters,
        max_extra_msa=max_extra, max_templates=m.max_templates, use_templates=common.use_templates,
        subsample_templates=m.subsample_templates, filter_templates=mode == "train" and m.filter_templates,
        msa_cluster_features=common.msa_cluster_features,
        masked_msa=(mm.profile_prob, mm.same_prob, mm.uniform_prob), replace_fraction=m.masked_msa_replace_fraction,
        crop_size=crop_size, spatial_crop_prob=spatial, block_delete=block_delete, fape_clamp_prob=clamp,
        max_distillation_msa=distillation_msa)


def output_feature_names(s: PipelineSettings) -> tuple:
    """Names of the arrays :func:`process_features` returns under settings ``s`` (in a fixed order). Training adds
    the loss targets and, with templates, their derived torsion features (:mod:`.derived_features`)."""
    templates = TEMPLATE_INPUTS if s.use_templates else ()
    if s.use_templates and s.mode == "train":
        templates += derived_features.DERIVED_FEATURES
    names = BASE_INPUTS + templates + (EXTRA_MSA_INPUTS if s.max_extra_msa else ())
    return names + (tuple(fs.TARGET_FEATURES) if s.mode == "train" else ())


# ----------------------------------------------------------------------------------------------- raw features

def _as_bytes_array(value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "S":
        return arr
    flat = [v.encode() if isinstance(v, str) else bytes(v) for v in arr.ravel()]
    return np.array(flat, dtype="S" if any(flat) else "S1").reshape(arr.shape)


def canonical_raw_features(raw: dict, source=None) -> tuple[dict, list]:
    """Raw features in the table's names and dtypes (bit-preserving casts only). Returns ``(features, dropped)``
    where ``dropped`` lists input keys that are not raw features.

    Accepts AlphaFold ``features.pkl``-style dicts: object arrays of str/bytes, int64, float ``deletion_matrix``
    instead of ``deletion_matrix_int``, ``template_all_atom_mask``."""
    out, dropped = {}, []
    for key, value in raw.items():
        name = RAW_ALIASES.get(key, key)
        if name == "deletion_matrix" and "deletion_matrix_int" not in raw:
            name = "deletion_matrix_int"
        if name not in fs.RAW_FEATURES:
            dropped.append(key)
            continue
        spec = fs.RAW_FEATURES[name]
        if spec.dtype == "bytes":
            out[name] = _as_bytes_array(value)
            continue
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise InputError(f"feature '{key}' has dtype {arr.dtype}, expected {spec.dtype}", source)
        cast = arr.astype(spec.dtype)
        if cast.size and not np.array_equal(cast, arr):
            raise InputError(f"feature '{key}' does not fit {spec.dtype} without loss", source)
        out[name] = cast
    fs.validate(out, required=REQUIRED_RAW, spec=fs.RAW_FEATURES, source=source)
    fs.check_values(out, fs.RAW_FEATURES, source)
    return out, dropped


def squeeze_features(raw: dict) -> dict:
    """Raw -> per-residue arrays: aatype one-hot -> indices, deletion counts as float, scalar seq_length."""
    f = {k: np.asarray(v) for k, v in raw.items()}
    f["aatype"] = np.argmax(f["aatype"], axis=-1).astype(np.int32)
    num_res = f["aatype"].shape[0]
    f["seq_length"] = np.asarray(num_res, np.int32)
    f["deletion_matrix"] = f.pop("deletion_matrix_int").astype(np.float32)
    f["residue_index"] = f["residue_index"].astype(np.int32)
    f.setdefault("between_segment_residues", np.zeros(num_res, np.int32))
    f.pop("num_alignments", None)
    f["is_distillation"] = np.asarray(f.get("is_distillation", 0.0), np.float32).reshape(())
    return f


def make_seq_mask(f: dict) -> dict:
    f["seq_mask"] = np.ones(f["aatype"].shape, np.float32)
    return f


def make_atom14_masks(f: dict) -> dict:
    """atom14 <-> atom37 index maps and atom-existence masks of each residue type."""
    f.update(all_atom.make_atom14_masks(f["aatype"]))
    return f


def subsample_distillation_msa(f: dict, max_seq: int, rng: FeatureRNG) -> dict:
    """Self-distillation examples (Suppl. 1.3): the MSA is first subsampled to the query row plus ``max_seq - 1``
    random rows (1000 in OpenFold's reproduction: ``max_distillation_msa_clusters``)."""
    num_seq = f["msa"].shape[0]
    if num_seq <= max_seq:
        return f
    rows = np.sort(np.asarray(rng.shuffle("distillation_msa_shuffle", np.arange(1, num_seq)))[:max_seq - 1])
    return tm.gather_msa_rows(f, np.concatenate([[0], rows]).astype(np.int64))


# ----------------------------------------------------------------------------------------------- training targets

def make_training_targets(f: dict, fape_clamp_prob: float, rng: FeatureRNG, source=None) -> dict:
    """Loss targets of a sample from its atom37 labels (supplement 1.9): atom14 positions with the symmetric
    alternative, rigid-group frames, torsions, backbone frame, pseudo-beta; ``use_clamped_fape`` is 1 with
    probability ``fape_clamp_prob`` (supplement 1.11.5)."""
    missing = [k for k in LABEL_FEATURES if k not in f]
    if missing:
        raise InputError(f"training needs label feature(s) {', '.join(missing)}", source)
    positions = np.asarray(f["all_atom_positions"], np.float32)
    mask = np.asarray(f["all_atom_mask"], np.float32)
    targets = dict(all_atom.make_ground_truth(f["aatype"], positions, mask))
    targets.update(all_atom_positions=positions, all_atom_mask=mask,
                   resolution=np.asarray(f.get("resolution", 0.0), np.float32).reshape(()))
    clamp = float(rng.uniform("use_clamped_fape", ())) < fape_clamp_prob
    targets["use_clamped_fape"] = np.asarray(float(clamp), np.float32)
    return {k: v for k, v in targets.items() if k in fs.TARGET_FEATURES}


# ----------------------------------------------------------------------------------------------- the two stages

def prepare_sample(raw: dict, s: PipelineSettings, rng: FeatureRNG, source=None) -> tuple[dict, dict, np.ndarray]:
    """Per-sample stage. Returns ``(features, targets, keep)``: features shared by every batch, loss targets
    (training; empty otherwise) and the residue indices the crop keeps (None: every residue)."""
    raw, _ = canonical_raw_features(raw, source)
    f = squeeze_features(raw)
    num_res = int(f["seq_length"])
    tm.correct_msa_restypes(f)
    make_seq_mask(f)
    tm.make_msa_mask(f)
    if s.max_distillation_msa and float(f["is_distillation"]) > 0:
        subsample_distillation_msa(f, s.max_distillation_msa, rng)
    if s.block_delete:
        tm.block_delete_msa(f, rng=rng, **s.block_delete)
    tm.make_hhblits_profile(f)
    seed = np.asarray(rng.integers("random_crop_to_size_seed", -2 ** 31, 2 ** 31, size=2))
    f["random_crop_to_size_seed"] = seed.astype(np.int32)
    if s.use_templates:
        tt.ensure_template_features(f, num_res)
        tt.select_templates(f, s.max_templates, s.subsample_templates, rng, s.filter_templates)
        tt.fix_templates_aatype(f)
        tt.make_template_mask(f)
        tt.make_template_pseudo_beta(f)
    else:
        for k in [k for k in f if k.startswith(tt.TEMPLATE_PREFIX)]:
            del f[k]
    make_atom14_masks(f)
    targets = {}
    if s.mode == "train":
        targets = make_training_targets(f, s.fape_clamp_prob, rng, source)
    keep = crop_lib.choose_crop(num_res, s.crop_size, rng, f.get("all_atom_positions"), f.get("all_atom_mask"),
                                s.spatial_crop_prob)
    return f, targets, (None if len(keep) == num_res else keep)


def pad_sizes(s: PipelineSettings, num_res: int) -> dict:
    return {fs.N_RES: num_res, fs.N_SEQ: s.max_msa_clusters, fs.N_EXTRA: s.max_extra_msa,
            fs.N_TEMPL: s.max_templates}


def finalize(features: dict, keep: np.ndarray | None, sizes: dict) -> dict:
    """Crop to residues ``keep`` (None: all), zero-pad to ``sizes`` and cast to the table's dtypes."""
    if keep is not None:
        features = crop_lib.crop_features(features, keep)
    out = fs.pad_features(features, sizes)
    return {k: np.asarray(v).astype(fs.PROCESSED_FEATURES[k].dtype, copy=False) for k, v in out.items()}


def make_batch(f: dict, s: PipelineSettings, rng: FeatureRNG, keep: np.ndarray | None, sizes: dict,
               names: tuple) -> dict:
    """Per-batch stage: one recycling iteration's (or ensemble member's) model inputs from the prepared sample."""
    b = dict(f)
    tm.sample_msa(b, s.max_msa_clusters, rng, keep_extra=True)
    profile_prob, same_prob, uniform_prob = s.masked_msa
    tm.make_masked_msa(b, profile_prob, same_prob, uniform_prob, s.replace_fraction, rng)
    if s.msa_cluster_features:
        tm.nearest_neighbor_clusters(b)
        tm.summarize_clusters(b)
    if s.max_extra_msa:
        tm.crop_extra_msa(b, s.max_extra_msa, rng)
    else:
        tm.delete_extra_msa(b)
    tm.make_msa_feat(b)
    return finalize({k: b[k] for k in names if k in b}, keep, sizes)


def process_features(raw: dict, cfg, mode: str = "eval", rng: FeatureRNG | None = None, num_res: int | None = None,
                     source=None) -> dict:
    """Raw features -> batched model inputs (+ loss targets when ``mode == "train"``).

    ``num_res`` pads N_res (default: the crop size when training, else the sequence length; e.g. a bucket size at
    inference). Every array has a leading batch axis of length ``num_batches`` (recycling iterations x ensemble);
    training targets are repeated along it so each batch slice is a complete example.
    """
    return run_pipeline(raw, settings_from_config(cfg, mode), rng, num_res, source)


def run_pipeline(raw: dict, s: PipelineSettings, rng: FeatureRNG | None = None, num_res: int | None = None,
                 source=None) -> dict:
    """:func:`process_features` with settings already read from the config."""
    rng = rng if rng is not None else NumpyRNG(0)
    f, targets, keep = prepare_sample(raw, s, rng, source)
    kept = int(f["seq_length"]) if keep is None else len(keep)
    if num_res is None:
        num_res = s.crop_size if (s.mode == "train" and s.crop_size) else kept
    if num_res < kept:
        raise InputError(f"cannot pad {kept} residues down to num_res={num_res}", source)
    sizes = pad_sizes(s, num_res)
    names = output_feature_names(s)
    batches = [make_batch(f, s, rng.for_batch(i), keep, sizes, names) for i in range(s.num_batches)]
    batches = batches * s.repeat_batches
    out = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    if s.mode == "train" and s.use_templates:
        # templates are the same in every batch: their torsion features are computed once per sample
        derived = derived_features.add_derived_features(
            {k: batches[0][k] for k in derived_features.TORSION_INPUTS}, source=source)
        out.update({k: np.broadcast_to(derived[k], (len(batches),) + derived[k].shape).copy()
                    for k in derived_features.DERIVED_FEATURES})
    if targets:
        cropped = finalize(targets, keep, sizes)
        out.update({k: np.broadcast_to(v, (len(batches),) + v.shape).copy() for k, v in cropped.items()})
    return {k: out[k] for k in names}
