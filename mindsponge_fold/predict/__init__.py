"""``mindsponge-fold predict``: FASTA -> features -> models -> ranked, relaxed structures with confidence.

Modules: ``cli`` (the command), ``inputs`` (targets and checks), ``features`` (data pipeline stage), ``models``
(weights, configs, ``ModelRunner``), ``outputs`` (target directory layout), ``plots``.
"""
from mindsponge_fold.predict.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
