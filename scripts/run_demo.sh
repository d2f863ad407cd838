#!/usr/bin/env bash
# The main job on bundled defaults: set up (scripts/setup.sh), fold a real chain and score the result.
#
# Default: predict 1psm chain A (38 residues, examples/1psm_A.fasta; its alignments from
# ../shared/data/openfold_testdata) with the small network this project trained on that very chain
# (examples/weights/tiny_learn_1psm.npz, see examples/weights/tiny_learn_1psm.md: it memorised one chain, it is not
# a structure predictor), Amber-relax it (the demo fails unless 0 violations are left), `evaluate` it against the
# native mmCIF and print one line: TM-score, lDDT, lDDT-Ca, GDT_TS, RMSD-Ca, violations after relax.
#
# --params-dir DIR: with AlphaFold's released weights (DIR/params_model_1_ptm.npz) the same steps run on the bundled
# 2crb A example (examples/2crb_A.fasta + examples/alignments, 97 residues), a chain the bundled network never saw;
# scored against ../shared's 2crb native when present.
# --random-weights: the old pipeline tour (2crb A, tiny preset, seeded random weights, capped relax): a
# non-physical structure, scores printed for what they are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

usage() {
  cat <<EOF
usage: scripts/run_demo.sh [OUTPUT_DIR] [--params-dir DIR | --random-weights]

Fold a real chain and score it against its native structure (runs scripts/setup.sh first).

  OUTPUT_DIR          where the outputs go (default: outputs/demo); TARGET/ holds predict's files
                      (ranked_0.pdb relaxed, relax_metrics.json, ...) and TARGET/evaluation/ evaluate's
  --params-dir DIR    use AlphaFold's weights DIR/params_model_1_ptm.npz on the 2crb A example instead of the
                      bundled 1psm network
  --random-weights    pipeline tour with random weights (2crb A, tiny preset; the structure is not physical)
  -h, --help          this help

Default: 1psm A with the bundled network examples/weights/tiny_learn_1psm.npz, trained by this project on that
chain alone (examples/weights/tiny_learn_1psm.md): it reproduces one memorised chain, it does not predict others.
Needs the shared data directory (\$MSF_SHARED, default ../shared beside the repository).
EOF
}

out="outputs/demo" mode="bundled" params_dir=""
out_set=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --params-dir)
      [ "$#" -ge 2 ] && [ -n "$2" ] || { echo "run_demo.sh: --params-dir needs a directory" >&2; exit 2; }
      [ "$mode" = "bundled" ] || { echo "run_demo.sh: --params-dir and --random-weights exclude each other" >&2; exit 2; }
      mode="params" params_dir="$2"; shift 2 ;;
    --params-dir=*)
      [ "$mode" = "bundled" ] || { echo "run_demo.sh: --params-dir and --random-weights exclude each other" >&2; exit 2; }
      mode="params" params_dir="${1#*=}"; shift ;;
    --random-weights)
      [ "$mode" = "bundled" ] || { echo "run_demo.sh: --params-dir and --random-weights exclude each other" >&2; exit 2; }
      mode="random"; shift ;;
    -*) echo "run_demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *)
      [ "$out_set" = 0 ] || { echo "run_demo.sh: more than one OUTPUT_DIR ('$out', '$1')" >&2; exit 2; }
      out="$1" out_set=1; shift ;;
  esac
done

shared="${MSF_SHARED:-$here/../shared}"
data="$shared/data/openfold_testdata"
weights="examples/weights/tiny_learn_1psm.npz"
case "$mode" in
  bundled)
    [ -f "$data/mmcifs/1psm.cif" ] && [ -d "$data/alignments/1psm_A" ] || {
      echo "run_demo.sh: 1psm inputs not found under $data (set MSF_SHARED to the shared/ directory)" >&2; exit 2; }
    [ -f "$weights" ] || { echo "run_demo.sh: bundled weights $weights missing" >&2; exit 2; } ;;
  params)
    [ -f "$params_dir/params_model_1_ptm.npz" ] || {
      echo "run_demo.sh: --params-dir: no params_model_1_ptm.npz in '$params_dir' (AlphaFold's released weights)" >&2
      exit 2; } ;;
esac

scripts/setup.sh
export GLOG_v="${GLOG_v:-3}"
py=.venv/bin/python
msf() { "$py" -m mindsponge_fold.cli "$@"; }

# score TARGET_DIR NATIVE REQUIRE_ZERO_VIOLATIONS: evaluate ranked_0.pdb against the native, print the scores line
score() {
  local dir="$1" native="$2" strict="$3" target
  target="$(basename "$dir")"
  msf evaluate --predictions "$dir/ranked_0.pdb" --natives "$native" --out "$dir/evaluation" --match align >/dev/null
  "$py" - "$dir" "$target" "$strict" <<'EOF'
import csv, json, sys
from pathlib import Path
d, target, strict = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
row = next(csv.DictReader(open(d / "evaluation" / "metrics.csv")))
relax = json.loads((d / "relax_metrics.json").read_text())
left = sum(int(m.get("remaining_violations_count", -1)) for m in relax.values())
print(f"{target}: TM-score {float(row['tm_score']):.3f}  lDDT {float(row['lddt']):.3f}  "
      f"lDDT-Ca {float(row['lddt_ca']):.3f}  GDT_TS {float(row['gdt_ts']):.1f}  RMSD-Ca {float(row['rmsd_ca']):.2f} A  "
      f"({row['n_matched']}/{row['n_native']} residues)  violations after relax {left}")
if strict and left != 0:
    sys.exit(f"run_demo.sh: the relaxed model has {left} violation(s) left ({d / 'relax_metrics.json'})")
EOF
}

case "$mode" in
  bundled)
    # tiny_learn as trained (no recycling); the network's pLDDT head was not trained (loss weight 0): ignore pLDDT
    msf predict --fasta examples/1psm_A.fasta --alignments-dir "$data/alignments/1psm_A" --output-dir "$out" \
      --models "tiny_learn_1psm=$weights" --config tiny_learn --num-recycle 0 --models-to-relax best --plots --overwrite
    dir="$out/1psm_A" model=tiny_learn_1psm
    echo
    echo "Outputs in $dir/: ranked_0.pdb/.cif (relaxed), unrelaxed_$model.pdb, relax_metrics.json, evaluation/, plots/"
    echo "(bundled network: memorised 1psm A, not a general structure predictor; its pLDDT is untrained)"
    score "$dir" "$data/mmcifs/1psm.cif" 1 ;;
  params)
    msf predict --fasta examples/2crb_A.fasta --alignments-dir examples/alignments --output-dir "$out" \
      --models model_1_ptm --params-dir "$params_dir" --models-to-relax best --plots --overwrite
    dir="$out/2crb_A"
    echo
    echo "Outputs in $dir/: ranked_0.pdb/.cif (relaxed), unrelaxed_model_1_ptm.pdb, relax_metrics.json, plots/"
    if [ -f "$data/mmcifs/2crb.cif" ]; then
      score "$dir" "$data/mmcifs/2crb.cif" 1
    else
      echo "(no native $data/mmcifs/2crb.cif: not scored; set MSF_SHARED to the shared/ directory to score)"
    fi ;;
  random)
    # random weights make a tangle: the relax is capped (100 minimiser steps, one round, no untangling)
    msf predict --fasta examples/2crb_A.fasta --alignments-dir examples/alignments --output-dir "$out" \
      --models tiny --random-weights --seed 0 \
      --models-to-relax best --set relax.max_iterations=100 --set relax.max_outer_iterations=1 \
      --set relax.untangle=false --plots --overwrite
    dir="$out/2crb_A"
    echo
    echo "Outputs in $dir/ (random weights: not a prediction, the scores below show it)"
    if [ -f "$data/mmcifs/2crb.cif" ]; then score "$dir" "$data/mmcifs/2crb.cif" 0; fi ;;
esac
