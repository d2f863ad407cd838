"""``predict``: FASTA -> features -> models -> ranked, relaxed structures with confidence.

Modules: ``run`` (the run over targets, :func:`~mindsponge_fold.predict.run.predict`), ``settings`` (what a run
does, typed), ``inputs`` (targets and checks), ``features`` (data pipeline stage), ``models`` (weights, configs,
``ModelRunner``), ``outputs`` (target directory layout), ``plots``. The command line is
:mod:`mindsponge_fold.commands.predict`.
"""
