#!/usr/bin/env bash
# Data-parallel training on Ascend NPUs with msrun (HCCL collectives), one worker per NPU.
# Multi-node: run on every node with the same --nodes/--master-addr/--master-port and its own --node-rank.
# Clusters that are set up with an HCCL rank table use train_ascend_ranktable.sh instead.
set -euo pipefail
LAUNCHER=train_ascend.sh DEVICE=Ascend DEFAULT_WORKERS=8
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh"
parse_launch_args "$@"
run_msrun
