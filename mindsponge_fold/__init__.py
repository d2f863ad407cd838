"""mindsponge_fold: AlphaFold 2 in MindSpore (training, inference, AlphaFold weight import, evaluation)."""

__version__ = "0.1.0"
