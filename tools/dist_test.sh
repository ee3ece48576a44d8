#!/usr/bin/env bash
# Multi-GPU / multi-node evaluation through torch.distributed.run and
# mmengine's 'pytorch' launcher. Without CUDA it runs N CPU processes (gloo).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [tools/test.py options...]
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py options]" >&2
  exit 2
fi
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" "$3" test.py \
  "$1" "$2" "${@:4}"
