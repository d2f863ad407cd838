"""The ``mindsponge-fold`` subcommands: one module per subcommand, each with ``add_arguments(parser)`` and
``run(args) -> int``, sharing the options of :mod:`.options`.

This is the only layer that sees argparse ``Namespace`` objects: a command turns its options into a config and typed
settings and calls the library (``data``, ``model``, ``train``, ``predict``, ``relax``, ``eval``), which never
imports from here. ``SUBCOMMANDS`` maps each name to its module and one-line help; ``mindsponge_fold.cli`` dispatches.
"""

# name -> (module under mindsponge_fold.commands, one-line help)
SUBCOMMANDS = {
    "run-features": ("run_features", "run the network on AlphaFold-format processed features"),
    "convert-params": ("convert_params", "convert AlphaFold .npz weights to a MindSpore checkpoint (and back)"),
    "params-table": ("params_table", "print the AlphaFold-name -> Cell-parameter table"),
    "make-features": ("make_features", "build AlphaFold raw features from a FASTA and alignments"),
    "make-training-set": ("make_training_set", "PDB mmCIFs + per-chain alignments -> filtered, clustered training "
                                               "features (chains.tsv, report.tsv)"),
    "make-mindrecord": ("make_mindrecord", "convert precomputed features + mmCIF labels to MindRecord"),
    "make-distillation-set": ("make_distillation_set", "predict sequences and keep confident predictions as "
                                                       "self-distillation training examples"),
    "train": ("train", "train or fine-tune the model"),
    "predict": ("predict", "FASTA -> structures with confidence (pLDDT, PAE, pTM), optionally relaxed"),
    "relax": ("relax", "Amber-relax a PDB file"),
    "evaluate": ("evaluate", "score predictions against native structures (TM, GDT, lDDT, RMSD)"),
}
