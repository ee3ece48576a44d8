#!/usr/bin/env bash
# One-command environment for querypose_mm: the pinned OpenMMLab stack, with
# mmcv 2.1.0 built from its sdist (compiled ops) and cached as a wheel.
#
#   bash tools/setup_env.sh                 # creates ./.venv (Python 3.11)
#   bash tools/setup_env.sh --skip-torch    # keep the torch already importable
#                                           # (venv made with --system-site-packages)
#   bash tools/setup_env.sh --no-venv       # install into the current interpreter
#
# Options:
#   --venv DIR       where the virtual environment lives (default: <repo>/.venv)
#   --python EXE     interpreter used to create the venv (default: python3.11, else python3)
#   --no-venv        install into the interpreter given by --python (or python3)
#   --skip-torch     do not install torch/torchvision; use the ones already importable
#   --cuda auto|yes|no
#                    build mmcv CUDA ops; auto = yes when nvidia-smi sees a GPU
#                    (then nvcc must be on PATH or in $CUDA_HOME/bin, else the
#                    setup stops: CPU-only ops would fail at the first CUDA
#                    forward), no without a GPU (default: auto)
# Environment:
#   QUERYPOSE_WHEEL_CACHE  where built mmcv wheels are kept
#                          (default: ${XDG_CACHE_HOME:-~/.cache}/querypose_mm/wheels)
#   MAX_JOBS               parallel compile jobs for mmcv (mmcv's default otherwise)
#   PIP_NO_INDEX / PIP_FIND_LINKS are honoured by every pip call, so an offline
#   machine can install from a folder of wheels and the mmcv sdist.
set -Eeuo pipefail

TORCH_PIN="torch==2.14.1"
TORCHVISION_PIN="torchvision==0.29.1"
MMCV_VERSION="2.1.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="$repo_root/.venv"
python_exe=""
use_venv=1
skip_torch=0
cuda_mode=auto

while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) venv_dir="$(realpath -m "$2")"; shift 2 ;;
    --python) python_exe="$2"; shift 2 ;;
    --no-venv) use_venv=0; shift ;;
    --skip-torch) skip_torch=1; shift ;;
    --cuda) cuda_mode="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "setup_env.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

current_step="start"
step_no=0
step() {
  step_no=$((step_no + 1))
  current_step="$1"
  printf '\n[setup %d] %s\n' "$step_no" "$1"
}
trap 'rc=$?; printf "\n[setup] FAILED at step %d: %s (exit %d)\n" "$step_no" "$current_step" "$rc" >&2; exit $rc' ERR

start_time=$(date +%s)

step "choose the Python interpreter"
if [[ -z "$python_exe" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then python_exe=python3.11; else python_exe=python3; fi
fi
"$python_exe" -c 'import sys; assert sys.version_info[:2] >= (3, 8), sys.version' \
  || { echo "setup_env.sh: $python_exe is not Python >= 3.8" >&2; false; }
echo "using $($python_exe -c 'import sys; print(sys.executable, sys.version.split()[0])')"

if [[ $use_venv -eq 1 ]]; then
  step "create the virtual environment at $venv_dir"
  if [[ -x "$venv_dir/bin/python" ]]; then
    echo "exists; reusing it"
  else
    venv_args=()
    [[ $skip_torch -eq 1 ]] && venv_args+=(--system-site-packages)
    "$python_exe" -m venv "${venv_args[@]}" "$venv_dir"
  fi
  py="$venv_dir/bin/python"
else
  py="$(command -v "$python_exe")"
fi
# torch 2.14 declares setuptools>=77, but mmcv's setup.py and mim import pkg_resources,
# which setuptools>=70 removed; torch itself only needs setuptools to build extensions,
# which 69.x does. So every install after torch carries the pin, and pip never
# upgrades it behind our back (a conflict fails loudly instead).
SETUPTOOLS_PIN="setuptools<70"
# numpy 2.4 made int() of a 1-element array an error, which mmpose 1.3.2's
# visualizer does for every keypoint (PoseLocalVisualizer -> draw_circles).
NUMPY_PIN="numpy>=2,<2.4"
# pip reports these known, harmless conflicts after every install; hide only those lines.
# (openxlab comes with openmim and pins setuptools~=60.2; mim works with either.)
known_conflicts='dependency resolver does not currently take into account|requires chumpy|requires xtcocotools|(torch|openxlab) .* requires setuptools'
pip_install() {
  "$py" -m pip install --disable-pip-version-check "$@" \
    2> >(grep -v -E "$known_conflicts" >&2 || true)
}
pip_pinned() { pip_install "$@" "$SETUPTOOLS_PIN" "$NUMPY_PIN"; }
# cache_wheel WHEEL DIR: copy then rename, so an interrupted copy never looks like a
# cached wheel; prints the cached path
cache_wheel() {
  mkdir -p "$2"
  cp "$1" "$2/.partial"
  mv "$2/.partial" "$2/$(basename "$1")"
  echo "$2/$(basename "$1")"
}

step "build tools (requirements/build.txt)"
pip_install -q -r "$repo_root/requirements/build.txt"

if [[ $skip_torch -eq 1 ]]; then
  step "torch: using the one already installed (--skip-torch)"
  "$py" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
else
  step "torch and torchvision ($TORCH_PIN, $TORCHVISION_PIN)"
  pip_install -q "$TORCH_PIN" "$TORCHVISION_PIN"
fi
echo "pinning $SETUPTOOLS_PIN again (torch 2.14 asks for >=77; see the comment above)"
pip_install -q "$SETUPTOOLS_PIN"
"$py" -c 'import pkg_resources' 2>/dev/null || { echo "pkg_resources is missing after pinning $SETUPTOOLS_PIN" >&2; false; }
torch_tag="$("$py" -c 'import sys, torch; print(f"torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}")')"

step "mmengine 0.10.7"
pip_pinned -q "mmengine==0.10.7"

check_mmcv="$repo_root/tools/misc/check_mmcv_ops.py"
case "$cuda_mode" in
  auto|yes|no) ;;
  off) cuda_mode=no ;;
  on) cuda_mode=yes ;;
  *) echo "setup_env.sh: --cuda must be auto, yes or no, got '$cuda_mode'" >&2; false ;;
esac
if [[ "$cuda_mode" != no ]] && nvidia-smi -L >/dev/null 2>&1; then
  step "the GPUs and the architectures of torch"
  # names each GPU; refuses one that this torch has no kernels for (a V100 under
  # a torch built for sm_75 and newer) before mmcv is built for it
  "$py" "$check_mmcv" --gpus
fi

step "mmcv $MMCV_VERSION with compiled ops"
if [[ "$cuda_mode" == auto ]]; then
  if ! nvidia-smi -L >/dev/null 2>&1; then
    cuda_mode=no
  elif command -v nvcc >/dev/null 2>&1 || [[ -x "${CUDA_HOME:-/nonexistent}/bin/nvcc" ]]; then
    cuda_mode=yes
  else
    torch_cuda="$("$py" -c 'import torch; print(torch.version.cuda or "?")')"
    echo "setup_env.sh: nvidia-smi sees a GPU but there is no CUDA compiler (nvcc on PATH" \
      "or in \$CUDA_HOME/bin), so mmcv would get CPU ops only and the model would stop" \
      "at its first CUDA forward. Install the CUDA toolkit $torch_cuda (torch.version.cuda;" \
      "nvcc, docs/install.md \"The GPU build of mmcv\") and rerun, or rerun with --cuda no" \
      "to build CPU ops on purpose." >&2
    false
  fi
fi
if [[ "$cuda_mode" == yes ]]; then
  export FORCE_CUDA=1
  # torch takes the toolkit from CUDA_HOME, else from where nvcc is on PATH: a
  # wrapper script there (/usr/local/bin/nvcc) gives a folder without headers
  if [[ -z "${CUDA_HOME:-}" ]] && command -v nvcc >/dev/null 2>&1; then
    for candidate in "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")" /usr/local/cuda; do
      if [[ -f "$candidate/include/cuda_runtime.h" ]]; then export CUDA_HOME="$candidate"; break; fi
    done
  fi
  if [[ ! -f "${CUDA_HOME:-/nonexistent}/include/cuda_runtime.h" || ! -x "$CUDA_HOME/bin/nvcc" ]]; then
    echo "--cuda yes: no CUDA toolkit found (nvcc and include/cuda_runtime.h); set CUDA_HOME" >&2
    false
  fi
  echo "CUDA toolkit: $CUDA_HOME ($("$CUDA_HOME/bin/nvcc" --version | grep -o 'release [0-9.]*'))"
  # torch's CUDA headers include cusparse.h, cublas_v2.h, ...: a CUDA toolkit with
  # nvcc alone lacks them, the nvidia-* wheels that came with torch hold them.
  nvidia_includes="$("$py" -c 'import glob, os, sysconfig; print(":".join(sorted(glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "*", "include")))))')"
  [[ -n "$nvidia_includes" ]] && export CPATH="$nvidia_includes${CPATH:+:$CPATH}"
  # A wheel holds device code for the architectures it was built for only.
  ops_tag="cuda$("$py" -c 'import torch; print(torch.version.cuda or "")')"
  [[ -n "${TORCH_CUDA_ARCH_LIST:-}" ]] && ops_tag+="-sm$(echo "$TORCH_CUDA_ARCH_LIST" | tr -c '0-9\n' '_')"
else
  unset FORCE_CUDA
  ops_tag=cpu
fi
cache_root="${QUERYPOSE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/querypose_mm/wheels}"
cache_dir="$cache_root/mmcv-$MMCV_VERSION-$torch_tag-$ops_tag"
mmcv_ok() { "$py" "$check_mmcv" --ops "${1%%[0-9]*}" --quiet; }
if mmcv_ok "$ops_tag"; then
  echo "mmcv $MMCV_VERSION with $ops_tag ops is already installed"
else
  shopt -s nullglob
  cached=("$cache_dir"/mmcv-"$MMCV_VERSION"-*.whl)
  shopt -u nullglob
  if [[ ${#cached[@]} -eq 0 ]]; then
    if [[ -n "${MMCV_BUILD_DIR:-}" ]]; then
      # kept: a rerun after a failed build resumes from the objects already compiled
      work="$(realpath -m "$MMCV_BUILD_DIR")"
      mkdir -p "$work"
    else
      work="$(mktemp -d)"
      trap 'rm -rf "$work"' EXIT
    fi
    echo "no cached wheel in $cache_dir: building from the sdist in $work" \
      "(CPU ops: about 13 min on 2 cores; CUDA ops: see docs/install.md)"
    src="$work/mmcv-$MMCV_VERSION"
    if [[ ! -f "$src/setup.py" ]]; then
      # --no-build-isolation: mmcv's setup.py imports torch and pkg_resources from this env.
      "$py" -m pip download -q --no-deps --no-binary mmcv --no-build-isolation \
        "mmcv==$MMCV_VERSION" -d "$work"
      tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
    fi
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes c++14/c++17.
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    grep -q -- '-std=c++20' "$src/setup.py"
    rm -rf "$work/dist"
    (cd "$src" && MMCV_WITH_OPS=1 "$py" -m pip wheel --no-deps --no-build-isolation -w "$work/dist" .)
    built=("$work"/dist/mmcv-"$MMCV_VERSION"-*.whl)
    cached=("$(cache_wheel "${built[0]}" "$cache_dir")")
  else
    echo "reusing cached wheel ${cached[0]}"
  fi
  pip_install -q --force-reinstall --no-deps "${cached[0]}"
  pip_pinned -q addict packaging Pillow pyyaml yapf opencv-python
  "$py" "$check_mmcv" --ops "${ops_tag%%[0-9]*}" \
    || { echo "mmcv installed but its $ops_tag ops do not load" >&2; false; }
fi

step "mmdet 3.3.0"
pip_pinned -q "mmdet==3.3.0"

step "mmpose 1.3.2 (--no-deps: its chumpy requirement does not build) and its runtime deps"
pip_pinned -q --no-deps "mmpose==1.3.2"
pip_pinned -q json_tricks munkres matplotlib scipy pillow opencv-python pycocotools

step "xtcocotools from its sdist (the PyPI wheel is built against numpy 1)"
# A C extension built against one numpy may not load under another, so the
# built wheel is cached per numpy version and (re)installed from there.
numpy_version="$("$py" -c 'import numpy; print(numpy.__version__)')"
xtcoco_dir="$cache_root/xtcocotools-numpy$numpy_version-${torch_tag#*-}"
shopt -s nullglob
xtcoco_wheels=("$xtcoco_dir"/xtcocotools-*.whl)
shopt -u nullglob
if [[ ${#xtcoco_wheels[@]} -eq 0 ]]; then
  echo "building it against numpy $numpy_version"
  xt_work="$(mktemp -d)"
  "$py" -m pip wheel -q --no-deps --no-binary xtcocotools --no-build-isolation \
    xtcocotools -w "$xt_work"
  built=("$xt_work"/xtcocotools-*.whl)
  xtcoco_wheels=("$(cache_wheel "${built[0]}" "$xtcoco_dir")")
  rm -rf "$xt_work"
else
  echo "reusing cached wheel ${xtcoco_wheels[0]}"
fi
pip_install -q --force-reinstall --no-deps "${xtcoco_wheels[0]}"
"$py" -c 'from xtcocotools.cocoeval import COCOeval'

step "test, lint, deployment and optional tools (requirements/tests.txt, deploy.txt, optional.txt)"
pip_pinned -q -r "$repo_root/requirements/tests.txt" -r "$repo_root/requirements/deploy.txt" \
  -r "$repo_root/requirements/optional.txt"

# openmim's openxlab pins setuptools~=60.2, which predates pyproject.toml
# metadata (PEP 621, setuptools >= 61); mim works with the newer one.
pip_install -q "setuptools>=64,<70"

step "querypose_mm (editable)"
# --no-deps: every requirement is installed above; resolving mmpose's again would pull chumpy.
pip_pinned -q --no-deps --no-build-isolation -e "$repo_root"

step "check the environment"
"$py" - <<'EOF'
import mmcv, mmdet, mmengine, mmpose, torch
from mmcv.ops import MultiScaleDeformableAttention, RoIAlign  # noqa: F401
import querypose_mm  # noqa: F401
print(f'torch {torch.__version__} | mmengine {mmengine.__version__} | mmcv {mmcv.__version__} '
      f'| mmdet {mmdet.__version__} | mmpose {mmpose.__version__} | querypose_mm {querypose_mm.__version__}')
EOF
"$py" -m mim --version >/dev/null || "$(dirname "$py")/mim" --version

trap - ERR
echo
echo "[setup] done in $(( $(date +%s) - start_time )) s. Python: $py"
[[ $use_venv -eq 1 ]] && echo "[setup] activate with: source $venv_dir/bin/activate"
exit 0
