#!/usr/bin/env bash
# Learning demo on CPU: the tiny network overfits one real chain. Builds 1psm A's features (38 residues, the
# alignments and mmCIF in ../shared/data/openfold_testdata) with make-features, converts them to MindRecord with
# make-mindrecord, and trains with `mindsponge-fold train --config tiny_learn`, validating lDDT-Ca against the native.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${MSF_SHARED:-$here/../shared}"

usage() {
  cat <<EOF
usage: scripts/learn_demo.sh [-o OUT] [--steps N] [-- TRAIN_ARGS...]

  -o, --out DIR    working directory: features/, 1psm_A.mindrecord, run/ (default: runs/learn_1psm)
      --steps N    optimisation steps (default: tiny_learn's 2000, lDDT-Ca ~0.7; 5000: ~0.95)
  --               further arguments for 'mindsponge-fold train' (e.g. --set train.eval_every=1000)
  -h, --help       this help
EOF
}

out="runs/learn_1psm" steps=""
need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || { echo "learn_demo.sh: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    -o|--out) need_value "$@"; out="$2"; shift 2 ;;
    --steps) need_value "$@"; steps="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "learn_demo.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$steps" ] && ! [[ "$steps" =~ ^[1-9][0-9]*$ ]]; then
  echo "learn_demo.sh: --steps must be a positive integer (got '$steps')" >&2; exit 2
fi

data="$shared/data/openfold_testdata"
[ -f "$data/mmcifs/1psm.cif" ] && [ -d "$data/alignments/1psm_A" ] \
  || { echo "learn_demo.sh: 1psm inputs not found under $data (set MSF_SHARED)" >&2; exit 2; }

py="$here/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" GLOG_v="${GLOG_v:-3}"
msf() { "$py" -m mindsponge_fold.cli "$@"; }

mkdir -p "$out/features"
if [ ! -f "$out/1psm_A.mindrecord.manifest.json" ]; then
  sequence="import sys; from mindsponge_fold.data.mmcif import load_chain; print(load_chain(sys.argv[1], 'A').sequence)"
  { echo ">1psm_A"; "$py" -c "$sequence" "$data/mmcifs/1psm.cif"; } > "$out/1psm_A.fasta"
  msf make-features --fasta "$out/1psm_A.fasta" --alignments-dir "$data/alignments/1psm_A" \
    --ground-truth "$data/mmcifs/1psm.cif:A" --out "$out/features/1psm_A.npz"
  msf make-mindrecord --features-dir "$out/features" --out "$out/1psm_A.mindrecord" --no-progress
fi
args=(train --config tiny_learn --data "$out/1psm_A.mindrecord" --val-data "$out/1psm_A.mindrecord" --out "$out/run"
      --workers 1)
[ -z "$steps" ] || args+=(--steps "$steps")
msf "${args[@]}" "$@"
