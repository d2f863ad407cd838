#!/usr/bin/env bash
# Data-parallel training on NVIDIA GPUs with msrun (NCCL collectives), one worker per GPU.
# Multi-node: run on every node with the same --nodes/--master-addr/--master-port and its own --node-rank.
set -euo pipefail
LAUNCHER=train_gpu.sh DEVICE=GPU DEFAULT_WORKERS=8
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh"
parse_launch_args "$@"
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus="$(nvidia-smi -L | wc -l)"
  [ "$WORKERS" -le "$gpus" ] || launch_error "--workers $WORKERS exceeds the $gpus GPU(s) on this node"
fi
run_msrun
