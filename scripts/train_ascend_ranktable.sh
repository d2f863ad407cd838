#!/usr/bin/env bash
# Data-parallel training on Ascend NPUs from an HCCL rank table (no msrun): one process per local NPU with
# RANK_TABLE_FILE, RANK_SIZE, RANK_ID (= node_rank x workers + local index) and DEVICE_ID set; HCCL builds the
# group from the table. Run it on every node with its own --node-rank. Logs: LOG_DIR/worker_<rank>.log.
set -euo pipefail
LAUNCHER=train_ascend_ranktable.sh DEVICE=Ascend DEFAULT_WORKERS=8
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh"
parse_launch_args "$@"
[ -n "$RANK_TABLE" ] || launch_error "--rank-table FILE is required (or set RANK_TABLE_FILE)"
[ -f "$RANK_TABLE" ] || launch_error "rank table '$RANK_TABLE' does not exist"
RANK_TABLE="$(cd "$(dirname "$RANK_TABLE")" && pwd)/$(basename "$RANK_TABLE")"
mkdir -p "$LOG_DIR"
echo "$LAUNCHER: $TOTAL_WORKERS rank(s) ($WORKERS on node $NODE_RANK), rank table $RANK_TABLE, logs in $LOG_DIR" >&2
pids=()
for ((i = 0; i < WORKERS; i++)); do
  rank=$((NODE_RANK * WORKERS + i))
  RANK_TABLE_FILE="$RANK_TABLE" RANK_SIZE="$TOTAL_WORKERS" RANK_ID="$rank" DEVICE_ID="$i" \
    PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" "$CLI" train "${TRAIN_ARGS[@]}" --device Ascend > "$LOG_DIR/worker_$rank.log" 2>&1 &
  pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=$?
done
[ "$status" -eq 0 ] || echo "$LAUNCHER: a worker failed (status $status); see $LOG_DIR" >&2
exit "$status"
