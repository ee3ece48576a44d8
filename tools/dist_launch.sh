#!/usr/bin/env bash
# What tools/dist_train.sh and tools/dist_test.sh share: run a tool of this
# folder in NUM_PROCS processes per node through torch.distributed.run and
# mmengine's 'pytorch' launcher (gloo without CUDA).
#
#   bash tools/dist_launch.sh NUM_PROCS TOOL.py [TOOL.py arguments...]
#   environment: NNODES, NODE_RANK, MASTER_ADDR, PORT, PYTHON
set -euo pipefail
NPROCS=$1
TOOL=$2
shift 2
tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

PYTHONPATH="$tools_dir/..${PYTHONPATH:+:$PYTHONPATH}" \
"${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$NPROCS" --master_port="${PORT:-29500}" \
  "$tools_dir/$TOOL" --launcher pytorch "$@"
