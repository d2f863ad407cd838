#!/usr/bin/env bash
# Data-parallel training on CPU workers with msrun (MCCL collectives over TCP; loopback on one machine).
# Used by CI with 2 workers on the tiny preset (tests/test_train_distributed.py). Run with -h for the options.
set -euo pipefail
LAUNCHER=train_cpu.sh DEVICE=CPU DEFAULT_WORKERS=2
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh"
parse_launch_args "$@"
export GLOG_v="${GLOG_v:-3}"
run_msrun
