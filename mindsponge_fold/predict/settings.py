"""What a ``predict`` run does, as frozen dataclasses built at the command boundary
(:mod:`mindsponge_fold.commands.predict`): which models (:class:`ModelSettings`), where the features come from
(:class:`FeatureSettings`), what is written (:class:`OutputSettings`), and the targets (:class:`PredictSettings`).
"""
from __future__ import annotations

import dataclasses

from mindsponge_fold.data.search import SearchSettings, TemplateHitSettings

DEFAULT_MODELS = "model_1,model_2,model_3,model_4,model_5"   # AlphaFold's monomer preset


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """Models to run and how (see :mod:`mindsponge_fold.predict.models`)."""
    models: tuple = ()                    # 'NAME[=WEIGHTS],...' entries; empty: DEFAULT_MODELS
    params_dir: str | None = None         # weights of entries without a path: DIR/params_NAME.npz
    random_weights: bool = False          # entries without weights get seeded random weights
    preset: str | None = None             # config preset for every model (default: the preset named as the model)
    af_config: str | None = None          # AlphaFold config.json for every model
    overrides: tuple = ()                 # KEY=VALUE config overrides for every model
    num_recycle: int | None = None        # None: the config's model.num_recycle
    seed: int = 0                         # feature-processing and random-weights seed
    use_ema: bool = False                 # EMA weights of training checkpoints
    bucket: bool = True                   # pad N_res up to a length bucket
    device: str | None = None             # MindSpore device target
    compile_cache: str | None = None      # compiled-graph cache directory


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    """Where raw features come from (see :mod:`mindsponge_fold.predict.features`)."""
    alignments_dir: str | None = None
    single_sequence: bool = False
    msa: str | None = None                # a ColabFold-style a3m (one target) or a directory of <target>.a3m
    search: SearchSettings = SearchSettings()
    template_hits: TemplateHitSettings = TemplateHitSettings()


@dataclasses.dataclass(frozen=True)
class OutputSettings:
    """What is written per target (see :mod:`mindsponge_fold.predict.outputs`)."""
    models_to_relax: str = "best"         # best | all | none
    rank_by: str | None = None            # plddt | ptm; None: the config's model.rank_by
    plots: bool = False
    max_length: int | None = None         # None: the config's largest length bucket
    allow_unknown: bool = False
    save_representations: bool = False
    save_processed_features: bool = False
    overwrite: bool = False


@dataclasses.dataclass(frozen=True)
class PredictSettings:
    """One ``predict`` run: the targets (FASTA files, or one features file) and the settings above."""
    output_dir: str
    fasta: tuple = ()
    features: str | None = None
    name: str | None = None
    models: ModelSettings = ModelSettings()
    inputs: FeatureSettings = FeatureSettings()
    outputs: OutputSettings = OutputSettings()
    command: tuple = ()                   # the command line, recorded in each target's run.json
