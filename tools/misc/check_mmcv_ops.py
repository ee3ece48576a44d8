"""Check that the installed mmcv has the compiled ops this project uses.

``--ops cpu``: mmcv 2.1.0 with its ``_ext`` extension, and RoIAlign gives the
right value on the CPU.

``--ops cuda``: additionally the extension was compiled with CUDA and holds
the CUDA kernels of the ops the model calls on a GPU (RoIAlign from mmdet's
RoI extractors, sigmoid focal loss from mmdet's ``FocalLoss``). With a
visible GPU they are run and compared with the CPU kernels; without one
(a build machine) the check says so and passes: compiled is all it can tell.

``--gpus``: name the visible GPUs and check that the installed torch has
kernels for their architecture (run by the setup before mmcv is built).

Run by ``tools/setup_env.sh`` before anything but torch and mmcv is
installed, so it imports nothing else (``querypose_mm/utils/
cuda_support.py``, which it shares with the model's own check, is loaded
from its file).

Usage::

    python tools/misc/check_mmcv_ops.py --ops cuda
    python tools/misc/check_mmcv_ops.py --gpus
"""
import argparse
import importlib.util
import os.path as osp
import sys

MMCV_VERSION = '2.1.0'
CUDA_SUPPORT = osp.join(
    osp.dirname(osp.abspath(__file__)), '..', '..', 'querypose_mm', 'utils',
    'cuda_support.py')


class CheckFailed(Exception):
    pass


def check_cpu_ops() -> str:
    import mmcv
    import torch
    if mmcv.__version__ != MMCV_VERSION:
        raise CheckFailed(
            f'mmcv {mmcv.__version__} is installed, this project '
            f'needs {MMCV_VERSION}')
    try:
        from mmcv.ops import RoIAlign
    except ImportError as e:  # mmcv-lite, or an extension that does not load
        raise CheckFailed(f'mmcv has no compiled ops: {e}') from e
    # a ramp along x: an aligned 2x2 RoI over [0, 4) samples x = 0.5 and 2.5
    feat = torch.arange(4.).repeat(4, 1).view(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]])
    out = RoIAlign(
        2, spatial_scale=1.0, sampling_ratio=1, aligned=True)(feat, rois)
    expected = torch.tensor([[0.5, 2.5], [0.5, 2.5]])
    if not torch.allclose(out[0, 0], expected):
        raise CheckFailed(f'RoIAlign on the CPU gave {out[0, 0].tolist()}, '
                          f'expected {expected.tolist()}')
    return f'mmcv {mmcv.__version__}: CPU ops load and RoIAlign is right'


def load_cuda_support():
    """``querypose_mm.utils.cuda_support``, from its file in a checkout (the
    package's ``__init__`` imports mmdet and mmpose, which the setup has not
    installed yet), else from the installed package."""
    if not osp.isfile(CUDA_SUPPORT):
        from querypose_mm.utils import cuda_support
        return cuda_support
    spec = importlib.util.spec_from_file_location('cuda_support', CUDA_SUPPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_gpus() -> str:
    """Name the visible GPUs; refuse one the installed torch has no kernels
    for."""
    import torch
    if not torch.cuda.is_available():
        raise CheckFailed(
            f'torch {torch.__version__} sees no GPU (CUDA '
            f'{torch.version.cuda or "none: a CPU build"}); where '
            'nvidia-smi lists one, its driver is older than this CUDA '
            'needs (nvidia-smi prints the highest CUDA it supports)')
    arch_list = torch.cuda.get_arch_list()
    unsupported = load_cuda_support().unsupported_gpus()
    if unsupported:
        raise CheckFailed(
            f'{", ".join(unsupported)}: torch {torch.__version__} has '
            f'kernels for {" ".join(arch_list)} only; install a torch build '
            'whose torch.cuda.get_arch_list() covers it, then mmcv for it '
            '(docs/install.md, "Which GPUs")')
    names = [
        f'cuda:{i} {torch.cuda.get_device_name(i)} (sm_'
        f'{"".join(map(str, torch.cuda.get_device_capability(i)))})'
        for i in range(torch.cuda.device_count())
    ]
    return (f'{", ".join(names)}: supported by torch {torch.__version__} '
            f'({" ".join(arch_list)})')


def check_cuda_ops() -> str:
    import torch
    from mmcv.ops import (RoIAlign, get_compiling_cuda_version,
                          sigmoid_focal_loss)
    cuda_support = load_cuda_support()
    problem = cuda_support.mmcv_cuda_ops_problem()
    if problem is not None:
        raise CheckFailed(f'{problem}; {cuda_support.MMCV_CUDA_FIX}')
    built = (f'built with CUDA {get_compiling_cuda_version()} ops '
             f'({len(cuda_support.CUDA_LAUNCHERS)} CUDA launchers of '
             'RoIAlign and sigmoid focal loss found)')
    if not torch.cuda.is_available():
        return built + '; no GPU visible, so they were not run'
    gen = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 8, 32, 32, generator=gen)
    rois = torch.tensor([[0., 2., 3., 20., 28.], [1., 0., 0., 31., 31.]])
    roi_align = RoIAlign(7, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    cpu = roi_align(feat, rois)
    gpu = roi_align(feat.cuda(), rois.cuda()).cpu()
    logits = torch.randn(16, 1, generator=gen)
    labels = torch.randint(0, 2, (16, ), generator=gen)
    loss = sigmoid_focal_loss(logits.cuda(), labels.cuda(), 2.0, 0.25, None,
                              'sum').cpu()
    p = logits.sigmoid()[:, 0]
    target = (labels == 0).float()  # mmcv: label C (here 1) is background
    pt = p * target + (1 - p) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    expected = (-alpha * (1 - pt)**2 * pt.log()).sum()
    if not (torch.allclose(cpu, gpu, atol=1e-5)
            and torch.allclose(loss, expected, rtol=1e-4)):
        raise CheckFailed(f'{built}, but on {torch.cuda.get_device_name()} '
                          'they disagree with the CPU')
    return f'{built}; run on {torch.cuda.get_device_name()}: equal to the CPU'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ops', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument(
        '--gpus',
        action='store_true',
        help='only name the visible GPUs and check that torch supports them')
    parser.add_argument(
        '--quiet', action='store_true', help='print nothing, exit status only')
    args = parser.parse_args()
    try:
        if args.gpus:
            messages = [check_gpus()]
        else:
            messages = [check_cpu_ops()]
            if args.ops == 'cuda':
                messages.append(check_cuda_ops())
    except (CheckFailed, ImportError, OSError) as e:
        if not args.quiet:
            print(f'check_mmcv_ops: {e}', file=sys.stderr)
        return 1
    if not args.quiet:
        print('\n'.join(messages))
    return 0


if __name__ == '__main__':
    sys.exit(main())
