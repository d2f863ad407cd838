"""Feature stage of ``predict``: raw features per target (AlphaFold's data pipeline, supplement 1.2), processed per
model (supplement 1.2.7-1.2.9, ``data.transforms.process_features``).

Raw features come from, in this order: a features file given to ``predict``; a ColabFold-style a3m given with
``--msa`` (the whole MSA); single-sequence mode (the query is the whole MSA); or
``data.pipeline.DataPipeline`` reading precomputed alignments and running the configured search tools (jackhmmer,
hhblits, hhsearch / hmmsearch, kalign) for the missing ones. Search outputs (and a given a3m) are written into the
target's ``msas/`` output directory, as AlphaFold does. Custom templates (``--templates``, with or without
``--template-hits``: ``data.custom_templates``) are used in every mode but the features file; without them ``--msa``
and single-sequence mode have no templates.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from mindsponge_fold.common.fileio import write_text
from mindsponge_fold.data import parsers, pipeline, templates
from mindsponge_fold.data.rng import NumpyRNG
from mindsponge_fold.data.search import build_pipeline
from mindsponge_fold.data.transforms import process_features
from mindsponge_fold.predict.inputs import ALIGNMENT_NAMES, alignment_dir_for, msa_file_for, read_colabfold_a3m
from mindsponge_fold.predict.settings import FeatureSettings


def single_sequence_features(sequence: str, description: str) -> dict:
    """Raw features with the query as the only MSA row and no templates."""
    msa = parsers.Msa([sequence], np.zeros((1, len(sequence)), np.int32), [description])
    return {**pipeline.make_sequence_features(sequence, description, len(sequence)),
            **pipeline.make_msa_features([msa]), **templates.stack_template_features([], len(sequence))}


class FeatureBuilder:
    """Raw features of each target. Constructing it checks the search binaries and databases (ToolError)."""

    def __init__(self, settings: FeatureSettings):
        self.alignments_dir = settings.alignments_dir
        self.single_sequence = bool(settings.single_sequence)
        self.msa = settings.msa
        self.can_search = settings.search.can_search
        self.hit_files = tuple(settings.template_hits.hit_files)
        self.given_templates = bool(settings.template_hits.custom_templates or self.hit_files)
        # the data pipeline of make-features, from the same settings (no direct templates here)
        self.pipeline = build_pipeline(settings.search, settings.template_hits)
        self.num_targets = 1

    def check_target(self, target) -> None:
        """Parse and check the target's precomputed alignments and template hits against its sequence
        (``DataPipeline.check_inputs``) without building features: run for every target before any model loads."""
        if target.features is not None:
            return
        if self.msa:
            self._given_msa(target)
        precomputed = None if self.msa else alignment_dir_for(target, self.alignments_dir, self.num_targets == 1)
        if precomputed is not None:
            self.pipeline.check_inputs(target.sequence, precomputed, f"{target.source} (target '{target.name}')",
                                       self.hit_files or None)
        elif self.given_templates:
            self.pipeline.check_templates(target.sequence, ".", self.hit_files)

    def raw_features(self, target, work_dir: Path) -> dict:
        """Raw features of ``target``; ``work_dir`` is the target's (temporary) output directory: searches write
        their alignments to ``work_dir/msas/``, with the precomputed ones copied beside them."""
        if target.features is not None:
            return target.features
        if self.msa:
            return self._given_msa_features(target, Path(work_dir))
        precomputed = alignment_dir_for(target, self.alignments_dir, self.num_targets == 1)
        if precomputed is None and self.single_sequence:
            return {**single_sequence_features(target.sequence, target.description), **self._templates(target)}
        work_dir = Path(work_dir)
        if precomputed is not None and not self.can_search:
            msa_dir = precomputed            # read in place: nothing to compute, nothing written there
        else:
            msa_dir = work_dir / "msas"
            msa_dir.mkdir(parents=True, exist_ok=True)
            for name in ALIGNMENT_NAMES if precomputed is not None else ():
                if (precomputed / name).exists():
                    shutil.copyfile(precomputed / name, msa_dir / name)
        fasta = work_dir / "query.fasta"     # the pipeline (and the search tools) read the query from a file
        write_text(fasta, f">{target.description}\n{target.sequence}\n")
        try:
            return self.pipeline.process(fasta, msa_dir, template_hit_files=self.hit_files or None,
                                         query_warnings=False)     # (warned when the targets were read)
        finally:
            fasta.unlink(missing_ok=True)

    def _given_msa(self, target) -> tuple:
        """(path, parsed MSA) of the target's ``--msa`` a3m, its first row checked against the target's sequence."""
        path = msa_file_for(target, self.msa)
        msa = read_colabfold_a3m(path)
        pipeline.check_msa_query(msa, target.sequence, f"{target.source} (target '{target.name}')")
        return path, msa

    def _given_msa_features(self, target, work_dir: Path) -> dict:
        """Raw features with the ``--msa`` a3m as the MSA (copied to ``msas/``); templates only from --templates /
        --template-hits."""
        path, msa = self._given_msa(target)
        (work_dir / "msas").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, work_dir / "msas" / path.name)
        return {**pipeline.make_sequence_features(target.sequence, target.description, len(target.sequence)),
                **pipeline.make_msa_features([msa]), **self._templates(target)}

    def _templates(self, target) -> dict:
        """Template features of the custom templates / given hits (none without them) for the --msa and
        single-sequence modes."""
        if not self.given_templates:
            return templates.stack_template_features([], len(target.sequence))
        return self.pipeline.template_features(target.sequence, Path("."), self.hit_files)


def processed_features(target, raw: dict, cfg, seed: int) -> dict:
    """The model input of one model: processed features as given, or ``process_features`` of the raw features in
    eval mode with a seeded numpy RNG (MSA cluster sampling and masking are random, as in AlphaFold)."""
    if target.processed:
        return raw
    return process_features(raw, cfg, mode="eval", rng=NumpyRNG(seed), source=target.source)
