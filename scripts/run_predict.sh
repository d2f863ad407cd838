#!/usr/bin/env bash
# Predict structures for a FASTA file (one target per record) with `mindsponge-fold predict`.
#
#   scripts/run_predict.sh FASTA OUTPUT_DIR [predict options...]
#
# e.g. with AlphaFold's released weights and precomputed alignments:
#   scripts/run_predict.sh targets.fasta out --alignments-dir alignments \
#       --params-dir /data/params --models model_1_ptm,model_2_ptm --plots
# or with the search tools and databases (AlphaFold's layout under $DB):
#   scripts/run_predict.sh T1050.fasta out --params-dir $DB/params \
#       --uniref90-database $DB/uniref90/uniref90.fasta --mgnify-database $DB/mgnify/mgy_clusters_2022_05.fa \
#       --bfd-database $DB/bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt \
#       --bfd-database $DB/uniref30/UniRef30_2021_03 --pdb70-database $DB/pdb70/pdb70 --mmcif-dir $DB/pdb_mmcif/mmcif_files \
#       --max-template-date 2022-01-01
# All options: scripts/run_predict.sh --help
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$here/.venv/bin/python"
[ -x "$py" ] || { echo "run_predict.sh: no .venv; run scripts/setup.sh first" >&2; exit 2; }
export GLOG_v="${GLOG_v:-3}"
if [ $# -ge 1 ] && { [ "$1" = "-h" ] || [ "$1" = "--help" ]; }; then
  exec "$py" -m mindsponge_fold.cli predict --help
fi
if [ $# -lt 2 ]; then
  echo "usage: scripts/run_predict.sh FASTA OUTPUT_DIR [predict options...]  (--help for all options)" >&2
  exit 2
fi
fasta="$1"; out="$2"; shift 2
exec "$py" -m mindsponge_fold.cli predict --fasta "$fasta" --output-dir "$out" "$@"
