#!/usr/bin/env bash
# Score predictions against CASP natives (default: the CASP14 dev targets in ../shared/data/casp14_dev) with
# `mindsponge-fold evaluate`: writes OUT/metrics.csv, metrics.md, summary.json and plots.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${MSF_SHARED:-$here/../shared}"

usage() {
  cat <<EOF
usage: scripts/run_eval_casp.sh -p PREDICTIONS [-n NATIVES] [-o OUT] [-d DOMAINS.tsv] [-m auto|number|align]
                                [--fasta FASTA [--predict-args "ARGS"]]

  -p, --predictions DIR   predicted structures: <TARGET>*.pdb/.cif files or <TARGET>/ directories
                          (with --fasta: where predict writes them)
  -n, --natives DIR       native structures <TARGET>.pdb/.cif (default: $shared/data/casp14_dev/natives)
  -o, --out DIR           output directory (default: eval_out/casp)
  -d, --domains TSV       optional domain definitions: target, domain, residue ranges (e.g. T1043  D1  1-70)
  -m, --match MODE        residue matching: auto (default), number or align
      --fasta FASTA       run 'mindsponge-fold predict' on FASTA first, then evaluate
      --predict-args STR  extra arguments for predict (one quoted string)
  -h, --help              this help
EOF
}

predictions="" natives="$shared/data/casp14_dev/natives" out="eval_out/casp" domains="" match="auto"
fasta="" predict_args=""
need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || { echo "run_eval_casp.sh: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    -p|--predictions) need_value "$@"; predictions="$2"; shift 2 ;;
    -n|--natives) need_value "$@"; natives="$2"; shift 2 ;;
    -o|--out) need_value "$@"; out="$2"; shift 2 ;;
    -d|--domains) need_value "$@"; domains="$2"; shift 2 ;;
    -m|--match) need_value "$@"; match="$2"; shift 2 ;;
    --fasta) need_value "$@"; fasta="$2"; shift 2 ;;
    --predict-args) [ "$#" -ge 2 ] || { echo "run_eval_casp.sh: --predict-args needs a value" >&2; exit 2; }
                    predict_args="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_eval_casp.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

fail() { echo "run_eval_casp.sh: $*" >&2; exit 2; }
[ -n "$predictions" ] || { echo "run_eval_casp.sh: --predictions is required" >&2; usage >&2; exit 2; }
if [ -z "$fasta" ]; then
  [ -e "$predictions" ] || fail "predictions not found: $predictions"
else
  [ -f "$fasta" ] || fail "FASTA file not found: $fasta"
fi
[ -e "$natives" ] || fail "natives not found: $natives"
[ -z "$domains" ] || [ -f "$domains" ] || fail "domain file not found: $domains"
case "$match" in auto|number|align) ;; *) fail "--match must be auto, number or align (got '$match')" ;; esac
[ -z "$predict_args" ] || [ -n "$fasta" ] || fail "--predict-args needs --fasta"

py="$here/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
args=(evaluate --predictions "$predictions" --natives "$natives" --out "$out" --match "$match")
[ -z "$domains" ] || args+=(--domains "$domains")
[ -z "$fasta" ] || args+=(--fasta "$fasta" --predict-args "$predict_args")
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m mindsponge_fold.cli "${args[@]}"
