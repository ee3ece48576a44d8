"""Whether this machine can run the model on CUDA: the GPU's architecture
in the installed torch, and mmcv's compiled CUDA ops.

Imports torch only (mmcv where asked), so that ``tools/setup_env.sh`` can
load it through ``tools/misc/check_mmcv_ops.py`` before the rest of the
stack is installed.
"""
import functools
import mmap
from typing import List, Optional

import torch

# host-side symbols of the CUDA launchers (mmcv/ops/csrc/pytorch/cuda) of
# the ops the model calls on a GPU: RoIAlign (mmdet's RoI extractors) and
# sigmoid focal loss (mmdet's FocalLoss)
CUDA_LAUNCHERS = (
    'ROIAlignForwardCUDAKernelLauncher',
    'ROIAlignBackwardCUDAKernelLauncher',
    'SigmoidFocalLossForwardCUDAKernelLauncher',
    'SigmoidFocalLossBackwardCUDAKernelLauncher',
)
MMCV_CUDA_FIX = (
    'rebuild mmcv with CUDA ops: `bash tools/setup_env.sh --cuda yes` on a '
    'machine with the CUDA toolkit (nvcc) of torch.version.cuda; see '
    'docs/install.md, "The GPU build of mmcv"')


def runs_on(capability: tuple, arch_list: List[str]) -> bool:
    """Whether a GPU of compute ``capability`` runs a torch built for
    ``arch_list`` (``torch.cuda.get_arch_list()``).

    A cubin ``sm_XY`` runs on capability X.Z for Z >= Y; PTX
    (``compute_XY``) is compiled at load time for any capability >= X.Y.

    Args:
        capability (tuple): (major, minor), e.g. (7, 0) for a V100.
        arch_list (list[str]): e.g. ``['sm_75', 'sm_80', 'sm_90']``.

    Returns:
        bool: True if some entry serves the GPU.
    """
    major, minor = capability
    for arch in arch_list:
        kind, _, number = arch.partition('_')
        digits = number.rstrip('af')  # sm_90a, sm_100f: family variants
        if not digits.isdigit():
            continue
        arch_major, arch_minor = divmod(int(digits), 10)
        if kind == 'sm' and arch_major == major and arch_minor <= minor:
            return True
        if kind == 'compute' and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


def unsupported_gpus() -> List[str]:
    """The visible GPUs that the installed torch has no kernels for, each as
    ``'cuda:I NAME (sm_XY)'``; empty without CUDA."""
    if not torch.cuda.is_available():
        return []
    arch_list = torch.cuda.get_arch_list()
    found = []
    for index in range(torch.cuda.device_count()):
        capability = torch.cuda.get_device_capability(index)
        if not runs_on(capability, arch_list):
            found.append(f'cuda:{index} {torch.cuda.get_device_name(index)} '
                         f'(sm_{capability[0]}{capability[1]})')
    return found


def mmcv_cuda_ops_problem() -> Optional[str]:
    """What keeps mmcv's compiled ops from running the model on CUDA, or
    None: built without CUDA, or without the CUDA kernels this project
    calls. Compiled is all it tells; ``tools/misc/check_gpu.py`` runs them.
    """
    try:
        import mmcv._ext
        from mmcv.ops import get_compiling_cuda_version
    except ImportError as e:
        return f'mmcv has no compiled ops ({e})'
    if get_compiling_cuda_version() == 'not available':
        return 'mmcv was built without CUDA ops'
    # searched in place: the library is some 80 MB, opened by every rank
    with open(mmcv._ext.__file__, 'rb') as f, mmap.mmap(
            f.fileno(), 0, access=mmap.ACCESS_READ) as binary:
        missing = [
            name for name in CUDA_LAUNCHERS if binary.find(name.encode()) < 0
        ]
    if missing:
        return f'{mmcv._ext.__file__} lacks the CUDA kernels {missing}'
    return None


@functools.lru_cache(maxsize=None)
def require_mmcv_cuda_ops() -> None:
    """Raise once a process if mmcv cannot run the model's ops on CUDA
    (instead of mmcv's ``roi_align_forward_impl: implementation for device
    cuda:0 not found`` at the first forward); cached when it can.

    Raises:
        RuntimeError: Naming what is missing and how to rebuild mmcv.
    """
    problem = mmcv_cuda_ops_problem()
    if problem is not None:
        raise RuntimeError(f'the model was moved to CUDA but {problem}; '
                           f'{MMCV_CUDA_FIX}')
