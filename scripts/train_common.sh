#!/usr/bin/env bash
# Shared argument handling of the distributed training launchers (train_cpu.sh, train_gpu.sh, train_ascend.sh,
# train_ascend_ranktable.sh). Sourced, not run. The caller sets LAUNCHER (its name), DEVICE and DEFAULT_WORKERS,
# then calls `parse_launch_args "$@"`; afterwards WORKERS, NODES, NODE_RANK, MASTER_ADDR, MASTER_PORT, LOG_DIR,
# TIMEOUT, RANK_TABLE and TRAIN_ARGS (array: the arguments after --) are set and validated.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
CLI="$REPO/mindsponge_fold/cli.py"

launch_usage() {
  cat <<USAGE
usage: scripts/$LAUNCHER [launcher options] -- <mindsponge-fold train arguments>

Data-parallel training on $DEVICE: one worker process per device (on CPU: --workers processes), gradients averaged over
all workers, the dataset sharded by rank, rank 0 writing checkpoints and logs.

launcher options:
  -n, --workers N        worker processes on this node (default $DEFAULT_WORKERS)
      --nodes N          number of nodes (default 1); total workers = N x --workers
      --node-rank R      this node's index, 0..N-1 (default 0)
      --master-addr A    address of node 0 (the scheduler; default 127.0.0.1, required with --nodes > 1)
      --master-port P    scheduler port, 1024..65535 (default 8118)
      --log-dir DIR      per-worker logs (default msrun_log)
      --timeout SEC      cluster-building timeout in seconds (default 600)
USAGE
  if [ "$LAUNCHER" = "train_ascend_ranktable.sh" ]; then
    echo "      --rank-table FILE  HCCL rank table JSON (required; RANK_TABLE_FILE)"
  fi
  cat <<USAGE
  -h, --help             this help

everything after -- goes to 'mindsponge-fold train' (--device $DEVICE is added), e.g.
  scripts/$LAUNCHER -n $DEFAULT_WORKERS -- --config train_initial --data data/train.mindrecord --out runs/initial
USAGE
}

launch_error() { echo "$LAUNCHER: $*" >&2; launch_usage >&2; exit 2; }

is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }

parse_launch_args() {
  WORKERS="$DEFAULT_WORKERS" NODES=1 NODE_RANK=0 MASTER_ADDR="" MASTER_PORT=8118 LOG_DIR=msrun_log TIMEOUT=600
  RANK_TABLE="${RANK_TABLE_FILE:-}"
  TRAIN_ARGS=()
  while [ "$#" -gt 0 ]; do
    case "$1" in
      -h|--help) launch_usage; exit 0 ;;
      --) shift; TRAIN_ARGS=("$@"); break ;;
      -n|--workers|--nodes|--node-rank|--master-addr|--master-port|--log-dir|--timeout|--rank-table)
        [ "$#" -ge 2 ] && [ -n "$2" ] || launch_error "$1 needs a value"
        case "$1" in
          -n|--workers) WORKERS="$2" ;;
          --nodes) NODES="$2" ;;
          --node-rank) NODE_RANK="$2" ;;
          --master-addr) MASTER_ADDR="$2" ;;
          --master-port) MASTER_PORT="$2" ;;
          --log-dir) LOG_DIR="$2" ;;
          --timeout) TIMEOUT="$2" ;;
          --rank-table) RANK_TABLE="$2" ;;
        esac
        shift 2 ;;
      *) launch_error "unknown option '$1' (train arguments go after --)" ;;
    esac
  done
  is_int "$WORKERS" && [ "$WORKERS" -ge 1 ] || launch_error "--workers must be a positive integer, got '$WORKERS'"
  is_int "$NODES" && [ "$NODES" -ge 1 ] || launch_error "--nodes must be a positive integer, got '$NODES'"
  is_int "$NODE_RANK" && [ "$NODE_RANK" -lt "$NODES" ] || launch_error "--node-rank must be 0..$((NODES - 1)), got '$NODE_RANK'"
  is_int "$MASTER_PORT" && [ "$MASTER_PORT" -ge 1024 ] && [ "$MASTER_PORT" -le 65535 ] \
    || launch_error "--master-port must be 1024..65535, got '$MASTER_PORT'"
  is_int "$TIMEOUT" && [ "$TIMEOUT" -ge 1 ] || launch_error "--timeout must be a positive number of seconds"
  if [ -z "$MASTER_ADDR" ]; then
    [ "$NODES" -eq 1 ] || launch_error "--master-addr is required with --nodes > 1"
    MASTER_ADDR=127.0.0.1
  fi
  [ "${#TRAIN_ARGS[@]}" -gt 0 ] || launch_error "no training arguments (give them after --)"
  local has_data=0 a
  for a in "${TRAIN_ARGS[@]}"; do
    case "$a" in
      --data|--data=*) has_data=1 ;;
      --device|--device=*) launch_error "do not pass --device: this launcher trains on $DEVICE" ;;
    esac
  done
  [ "$has_data" -eq 1 ] || launch_error "the training arguments need --data"
  TOTAL_WORKERS=$((WORKERS * NODES))
}

run_msrun() {
  local msrun="${MSRUN:-$(dirname "$PYTHON")/msrun}"
  [ -x "$msrun" ] || msrun="$(command -v msrun)" || launch_error "msrun not found (install MindSpore)"
  echo "$LAUNCHER: $TOTAL_WORKERS worker(s) ($WORKERS on node $NODE_RANK of $NODES), master $MASTER_ADDR:$MASTER_PORT, logs in $LOG_DIR" >&2
  # msrun starts each worker as `python SCRIPT`: put this Python first on PATH (a venv need not be activated)
  PATH="$(dirname "$PYTHON"):$PATH" PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" exec "$msrun" --worker_num="$TOTAL_WORKERS" --local_worker_num="$WORKERS" \
    --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --node_rank="$NODE_RANK" --log_dir="$LOG_DIR" \
    --join=True --cluster_time_out="$TIMEOUT" "$CLI" train "${TRAIN_ARGS[@]}" --device "$DEVICE"
}
