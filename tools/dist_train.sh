#!/usr/bin/env bash
# Multi-GPU / multi-node training through torch.distributed.run and
# mmengine's 'pytorch' launcher. Without CUDA it runs N CPU processes (gloo).
#
#   bash tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py options...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh ...
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]" >&2
  exit 2
fi
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" "$2" train.py \
  "$1" "${@:3}"
