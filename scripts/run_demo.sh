#!/usr/bin/env bash
# The main job on bundled defaults: set up (scripts/setup.sh), then predict the structure of the bundled example
# (examples/2crb_A.fasta, 97 residues, with its precomputed alignments trimmed to 128 rows per MSA; see
# scripts/make_example.py) with the tiny model preset and seeded random weights, Amber relax and plots.
#
#   scripts/run_demo.sh [OUTPUT_DIR]        (default: outputs/demo)
#
# Random weights make a non-physical structure (pLDDT ~50): the demo shows the whole pipeline and its outputs, not
# a prediction. The relax is capped (100 minimiser steps, one round, no untangling) so the demo takes a few minutes
# on a laptop CPU.
# For real predictions use AlphaFold's weights: scripts/run_predict.sh (see --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-outputs/demo}"
scripts/setup.sh
export GLOG_v="${GLOG_v:-3}"
.venv/bin/python -m mindsponge_fold.cli predict \
  --fasta examples/2crb_A.fasta --alignments-dir examples/alignments --output-dir "$out" \
  --models tiny --random-weights --seed 0 \
  --models-to-relax best --set relax.max_iterations=100 --set relax.max_outer_iterations=1 --set relax.untangle=false \
  --plots --overwrite
echo
echo "Demo outputs in $out/2crb_A/:"
echo "  ranked_0.pdb / ranked_0.cif        best model (relaxed), pLDDT in the B-factor column"
echo "  unrelaxed_tiny.pdb / relaxed_tiny.pdb, result_tiny.npz (raw outputs), pae_tiny.json, confidence_tiny.json"
echo "  ranking_debug.json, timings.json, relax_metrics.json, plots/*.png"
