"""Host-side recycling around the compiled AlphaFold iteration (inference).

``ModelRunner(cfg, weights)`` builds the network once; ``run(features)`` pads one example's processed features to
the configured length bucket (static shapes: a new length inside a bucket reuses the compiled graph), runs
iteration r = 0..num_recycle as one compiled call each, feeding back ``prev_pos`` / ``prev_msa_first_row`` /
``prev_pair`` (or, with teacher forcing, the reference's ``recycle_{r-1}/*``), and returns numpy outputs cropped back
to the true length, keyed by AlphaFold's names, with ``recycle_<r>/*`` for every earlier iteration and the
confidence metrics. This is the one inference code path: ``run-features`` and ``predict`` both call it.

With ``model.global_config.eval_dropout`` (AlphaFold 2.3's flag, ColabFold's ``use_dropout``) every iteration also
gets dropout masks with the training rates and shared axes at the sites AlphaFold's ``dropout_wrapper`` serves (the
Evoformer, extra-MSA and template pair stacks; not the structure module), drawn on the host for the padded inputs
from ``(seed, iteration)`` (:func:`~mindsponge_fold.model.dropout_masks.inference_masks`): a run is reproducible
for its seed, and models run with different seeds (``predict``: model i gets i + seed * num_models) give different
samples. Without it no masks are passed and the graph is the dropout-free one.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np

from mindsponge_fold.common import confidence
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import feature_shapes as fs
from mindsponge_fold.data.derived_features import add_derived_features
from mindsponge_fold.model.dropout_masks import dropout_sites, inference_masks
from mindsponge_fold.model.host_memory import compile_then_release, run_graph
from mindsponge_fold.model.outputs import RECYCLED, crop_output


def set_graph_mode(device: str | None = None, jit_level: str = "auto") -> None:
    """Graph mode on ``device`` (None: MindSpore's current target) at compile level ``jit_level`` (the config's
    ``runtime.jit_level``: ``auto`` = O1 on CPU, the framework's default elsewhere). Applies to graphs compiled
    afterwards."""
    import mindspore as ms
    if device and str(device).upper() != str(ms.get_context("device_target")).upper():
        ms.set_device(device)               # (setting the current target again fails once a kernel has run)
    ms.set_context(mode=ms.GRAPH_MODE)
    target = str(device or ms.get_context("device_target")).upper()
    level = ("O1" if target == "CPU" else None) if jit_level == "auto" else jit_level
    if level:
        ms.set_context(jit_config={"jit_level": level})


def split_iterations(features: dict, source=None) -> list[dict]:
    """Processed features with a leading recycling axis (AlphaFold's layout) -> one dict per iteration.
    Features without that axis (aatype of rank 1) are one iteration."""
    if "aatype" not in features:
        raise InputError("not processed features: no 'aatype' (expected AlphaFold's processed features, the "
                         "network's input)", source)
    batched = np.ndim(features["aatype"]) == 2
    fs.validate(features, spec=fs.INPUT_FEATURES, source=source, batch_dims=1 if batched else 0)
    if not batched:
        return [dict(features)]
    n = features["aatype"].shape[0]
    return [{k: (v[r] if np.ndim(v) > 0 and np.shape(v)[0] == n and k in fs.INPUT_FEATURES else v)
             for k, v in features.items()} for r in range(n)]


def check_model_inputs(features: dict, cfg, source=None) -> list[dict]:
    """:func:`split_iterations` of processed features, checked to hold every feature the network of ``cfg`` reads,
    so that a file which is not (or not all of) a processed features file is a one-line InputError naming it and
    the missing names before anything is built or compiled."""
    iters = split_iterations(features, source)
    needed = fs.NETWORK_INPUTS
    if cfg.model.embeddings_and_evoformer.template.enabled:
        needed = needed + fs.NETWORK_TEMPLATE_INPUTS
    missing = [k for k in needed if k not in iters[0]]
    if missing:
        raise InputError(f"not processed features for this model (the network's input): {len(missing)} feature(s) "
                         f"missing: {', '.join(missing)}", source)
    fs.check_values(features, fs.INPUT_FEATURES, source)
    return iters


def use_compile_cache(base_dir, cfg, shapes) -> None:
    """Point MindSpore's on-disk compile cache at a directory keyed by the config, the input shapes and the versions.

    MindSpore keys its cache on the source files only: two configs (or shapes) compiled from the same code would
    share an entry and the second would load the first's graph. Keying the directory avoids that."""
    import mindspore as ms
    from mindsponge_fold import __version__
    blob = json.dumps([cfg.to_dict(), shapes, ms.__version__, __version__], sort_keys=True, default=str)
    path = os.path.join(str(base_dir), hashlib.sha256(blob.encode()).hexdigest()[:20])
    ms.set_context(enable_compile_cache=True, compile_cache_path=path)


class ModelRunner:
    """Compiled inference with host recycling. ``weights``: AlphaFold .npz or our .ckpt (or None = random init).
    ``compile_cache``: a directory for compiled graphs (default: $MSF_COMPILE_CACHE, unset = no cache)."""

    def __init__(self, cfg, weights=None, use_ema: bool = False, bucket: bool = True, ctx=None, device=None,
                 compile_cache=None):
        from mindsponge_fold.model.alphafold import TupleOutput, build_model
        set_graph_mode(device, cfg.runtime.jit_level)
        self.cfg = cfg
        self.bucket = bucket
        self.model = build_model(cfg, ctx)
        self.weights_id = None
        if weights is not None:
            self.load_weights(weights, use_ema=use_ema)
        self.model.set_train(False)
        self.graph = TupleOutput(self.model)
        evo = cfg.model.embeddings_and_evoformer
        self.c_m, self.c_z = int(evo.msa_channel), int(evo.pair_channel)
        self.compiled_shapes: set = set()
        self.compile_cache = compile_cache or os.environ.get("MSF_COMPILE_CACHE") or None
        self.eval_dropout = bool(cfg.model.global_config.eval_dropout)
        self.dropout_sites = dropout_sites(self.model, inference=True) if self.eval_dropout else []
        self.torsion_rows = bool(self.model.evoformer.embed_torsion_angles)

    def load_weights(self, weights, use_ema: bool = False, weights_id=None) -> None:
        """(Re)load weights into the already built (and possibly compiled) network: AlphaFold .npz / our .ckpt
        path, or a dict of AlphaFold-layout arrays. Models sharing a config share one compiled graph this way."""
        from mindsponge_fold.model.params import load_alphafold_params, load_weights
        if isinstance(weights, dict):
            load_alphafold_params(self.model, weights, source=str(weights_id or "weights"))
        else:
            load_weights(self.model, weights, use_ema=use_ema)
        self.weights_id = weights_id if weights_id is not None else str(weights)

    # -- preparation ----------------------------------------------------------------------------------------------
    def padded_length(self, n_res: int) -> int:
        return fs.bucket_size(n_res, self.cfg.buckets.num_res) if self.bucket else n_res

    def prepare(self, batch: dict, n_pad: int) -> dict:
        """Model inputs of one iteration, derived features added, padded to ``n_pad`` residues, as Tensors."""
        import mindspore as ms
        batch = add_derived_features(batch)
        inputs = {k: batch[k] for k in fs.MODEL_INPUTS if k in batch}
        inputs = fs.pad_features(inputs, {fs.N_RES: n_pad}, spec=fs.INPUT_FEATURES)
        return {k: ms.Tensor(np.asarray(v, dtype=fs.INPUT_FEATURES[k].dtype)) for k, v in inputs.items()}

    def zero_prev(self, n_pad: int) -> tuple:
        return (np.zeros((n_pad, 37, 3), np.float32), np.zeros((n_pad, self.c_m), np.float32),
                np.zeros((n_pad, n_pad, self.c_z), np.float32))

    @staticmethod
    def _pad_prev(prev: tuple, n_pad: int) -> tuple:
        """Zero-pad (prev_pos [N,37,3], prev_msa_first_row [N,c_m], prev_pair [N,N,c_z]) to ``n_pad`` residues."""
        pos, first_row, pair = (np.asarray(a, np.float32) for a in prev)
        n = pos.shape[0]
        return (np.pad(pos, ((0, n_pad - n), (0, 0), (0, 0))), np.pad(first_row, ((0, n_pad - n), (0, 0))),
                np.pad(pair, ((0, n_pad - n), (0, n_pad - n), (0, 0))))

    # -- running --------------------------------------------------------------------------------------------------
    def dropout_masks(self, inputs: dict, seed: int, iteration: int) -> dict:
        """The ``drop`` Tensors of one iteration with ``eval_dropout`` for the padded ``inputs`` (empty without)."""
        import mindspore as ms
        masks = inference_masks(self.dropout_sites, inputs, self.torsion_rows, seed, iteration)
        return {k: ms.Tensor(v) for k, v in masks.items()}

    @staticmethod
    def _graph_args(inputs: dict, prev: tuple, drop: dict | None) -> tuple:
        """The iteration graph's arguments. The batch dict (and the dropout masks ``drop``, if any) are passed as
        ``ms.mutable`` so graph mode treats them as inputs (a plain dict would be a compile-time constant and
        recompile every call)."""
        import mindspore as ms
        args = (ms.mutable(inputs),) + tuple(ms.Tensor(p) for p in prev)
        return args + (ms.mutable(drop),) if drop else args

    def _graph_inputs(self, batch: dict, n_pad: int, seed: int, iteration: int) -> tuple:
        """(inputs, dropout masks, graph key) of one iteration's ``batch`` padded to ``n_pad``. The key is the input
        names and shapes; for a new one, the compile cache is pointed at its directory."""
        inputs = self.prepare(batch, n_pad)
        drop = self.dropout_masks(inputs, seed, iteration) if self.dropout_sites else {}
        key = tuple((k, tuple(v.shape)) for k, v in sorted({**inputs, **drop}.items()))
        if key not in self.compiled_shapes and self.compile_cache:
            use_compile_cache(self.compile_cache, self.cfg, key)
        return inputs, drop, key

    def iterate(self, inputs: dict, prev: tuple, drop: dict | None = None) -> dict:
        """One compiled iteration; returns padded numpy outputs."""
        out = self.graph.as_dict(run_graph(self.graph, *self._graph_args(inputs, prev, drop)))
        return {k: v.asnumpy() for k, v in out.items()}

    def compile(self, features: dict, seed: int = 0, source=None) -> float:
        """Compile the iteration graph for ``features`` (padded as :meth:`run` pads them) without running it, as the
        first call of :meth:`run` would (through the compile cache, the heap trimmed while compiling). Returns the
        seconds it took, 0.0 when a graph for these shapes exists already."""
        batch = check_model_inputs(features, self.cfg, source)[0]
        n_pad = self.padded_length(int(np.shape(batch["aatype"])[0]))
        inputs, drop, key = self._graph_inputs(batch, n_pad, seed, 0)
        if key in self.compiled_shapes:
            return 0.0
        t0 = time.perf_counter()
        compile_then_release(self.graph, *self._graph_args(inputs, self.zero_prev(n_pad), drop))
        self.compiled_shapes.add(key)
        return time.perf_counter() - t0

    def run(self, features: dict, num_recycle: int | None = None, teacher_forcing: dict | None = None,
            source=None, on_iteration=None, seed: int = 0) -> tuple[dict, dict]:
        """Run recycling on one example. Returns (outputs, timings).

        ``seed``: the dropout seed with ``model.global_config.eval_dropout`` (recorded as ``timings["dropout_seed"]``);
        unused without.

        With ``model.recycle_early_stop_tolerance`` > 0 (and no teacher forcing) recycling stops early, as in
        AlphaFold 2.3: after each recycling iteration, :func:`recycle_change` of the positions it was given and the
        ones it produced; at most the tolerance -> the next iteration is the last. ``num_recycles`` in the outputs is
        the number of recycling iterations run (before the last one); ``timings["recycle_changes"]`` the changes."""
        iters = check_model_inputs(features, self.cfg, source)
        num_recycle = int(self.cfg.model.num_recycle if num_recycle is None else num_recycle)
        if num_recycle < 0:
            raise InputError(f"num_recycle must be >= 0, got {num_recycle}", source)
        if 1 < len(iters) < num_recycle + 1:      # one batch: the same for every iteration (no MSA resampling)
            raise InputError(f"the features hold {len(iters)} recycling iterations, {num_recycle + 1} needed for "
                             f"num_recycle={num_recycle}", source)
        tolerance = 0.0 if teacher_forcing is not None else float(self.cfg.model.recycle_early_stop_tolerance)
        n_res = int(np.shape(iters[0]["aatype"])[0])
        n_seq = int(np.shape(iters[0]["msa_feat"])[0]) if "msa_feat" in iters[0] else None
        n_pad = self.padded_length(n_res)
        prev = self.zero_prev(n_pad)
        outputs: dict = {}
        timings = {"iterations_s": []}
        if self.eval_dropout:
            timings["dropout_seed"] = int(seed)
        last = num_recycle                          # the final iteration (earlier when recycling stops early)
        for r in range(num_recycle + 1):
            batch = iters[min(r, len(iters) - 1)]
            if teacher_forcing is not None and r > 0:
                prev = self._pad_prev(tuple(np.asarray(teacher_forcing[f"recycle_{r - 1}/{k}"])
                                            for k in ("final_atom_positions", "msa_first_row", "pair")), n_pad)
            inputs, drop, key = self._graph_inputs(batch, n_pad, seed, r)
            t0 = time.perf_counter()
            raw = self.iterate(inputs, prev, drop)
            dt = time.perf_counter() - t0
            if key not in self.compiled_shapes:
                self.compiled_shapes.add(key)
                timings["first_call_s"] = timings.get("first_call_s", 0.0) + dt
            timings["iterations_s"].append(dt)
            cropped = {k: crop_output(k, v, n_res, n_seq) for k, v in raw.items()}
            if r < last:
                for short, name in RECYCLED.items():
                    outputs[f"recycle_{r}/{short}"] = cropped[name]
                if tolerance > 0:
                    change = recycle_change(prev[0][:n_res], cropped["structure_module/final_atom_positions"],
                                            batch.get("seq_mask"))
                    timings.setdefault("recycle_changes", []).append(change)
                    if change <= tolerance:
                        last = r + 1
            else:
                outputs.update(cropped)
            if on_iteration is not None:
                on_iteration(r, last)
            if r == last:
                break
            prev = (raw["structure_module/final_atom_positions"], raw["representations/msa_first_row"],
                    raw["representations/pair"])
        outputs["num_recycles"] = np.asarray(last, np.int32)
        outputs.update(confidence_outputs(outputs))
        return outputs, timings


def recycle_change(prev_pos, pos, seq_mask=None) -> float:
    """AlphaFold 2.3's early-stop measure between two recycling iterations: the root mean square, over residue pairs
    with both residues in ``seq_mask``, of the change of the CA-CA distance matrix between ``prev_pos`` (the
    positions an iteration was given; zeros for the first) and ``pos`` (the ones it produced), both [N, 37, 3]
    atom37 positions (sqrt(mean + 1e-8), as AlphaFold)."""
    ca = rc.atom_order["CA"]

    def distances(x):
        x = np.asarray(x, np.float64)[:, ca]
        return np.sqrt(np.sum(np.square(x[:, None] - x[None, :]), axis=-1))

    n = np.shape(pos)[0]
    mask = np.ones(n) if seq_mask is None else np.asarray(seq_mask, np.float64)[:n]
    pair_mask = mask[:, None] * mask[None, :]
    sq = np.square(distances(prev_pos) - distances(pos))
    return float(np.sqrt(np.sum(sq * pair_mask) / (np.sum(pair_mask) + 1e-10) + 1e-8))


def confidence_outputs(outputs: dict) -> dict:
    """confidence/* arrays (float64) as the reference names them, from the head logits present."""
    out = {}
    if "predicted_lddt/logits" in outputs:
        out["confidence/plddt"] = confidence.compute_plddt(outputs["predicted_lddt/logits"])
    if "predicted_aligned_error/logits" in outputs:
        logits, breaks = outputs["predicted_aligned_error/logits"], outputs["predicted_aligned_error/breaks"]
        pae = confidence.compute_predicted_aligned_error(logits, breaks)
        out["confidence/predicted_aligned_error"] = pae["predicted_aligned_error"]
        out["confidence/max_predicted_aligned_error"] = pae["max_predicted_aligned_error"]
        out["confidence/ptm"] = confidence.predicted_tm_score(logits, breaks)
    return out
