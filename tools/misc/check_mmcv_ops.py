"""Check that the installed mmcv has the compiled ops this project uses.

``--ops cpu``: mmcv 2.1.0 with its ``_ext`` extension, and RoIAlign gives the
right value on the CPU.

``--ops cuda``: additionally the extension was compiled with CUDA and holds
the CUDA kernels of the ops the model calls on a GPU (RoIAlign from mmdet's
RoI extractors, sigmoid focal loss from mmdet's ``FocalLoss``). With a
visible GPU they are run and compared with the CPU kernels; without one
(a build machine) the check says so and passes: compiled is all it can tell.

Run by ``tools/setup_env.sh`` before anything but torch and mmcv is
installed, so it imports nothing else.

Usage::

    python tools/misc/check_mmcv_ops.py --ops cuda
"""
import argparse
import sys

MMCV_VERSION = '2.1.0'
# host-side symbols of the CUDA launchers (mmcv/ops/csrc/pytorch/cuda)
CUDA_LAUNCHERS = (
    'ROIAlignForwardCUDAKernelLauncher',
    'ROIAlignBackwardCUDAKernelLauncher',
    'SigmoidFocalLossForwardCUDAKernelLauncher',
    'SigmoidFocalLossBackwardCUDAKernelLauncher',
)


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


def check_cuda_ops() -> str:
    import mmcv._ext
    import torch
    from mmcv.ops import (RoIAlign, get_compiling_cuda_version,
                          sigmoid_focal_loss)
    compiled = get_compiling_cuda_version()
    if compiled == 'not available':
        raise CheckFailed('mmcv was built without CUDA ops (rebuild it with '
                          'FORCE_CUDA=1: tools/setup_env.sh --cuda yes)')
    with open(mmcv._ext.__file__, 'rb') as f:
        binary = f.read()
    missing = [name for name in CUDA_LAUNCHERS if name.encode() not in binary]
    if missing:
        raise CheckFailed(f'{mmcv._ext.__file__} lacks the CUDA kernels '
                          f'{missing}')
    built = (f'built with CUDA {compiled} ops ({len(CUDA_LAUNCHERS)} CUDA '
             'launchers of RoIAlign and sigmoid focal loss found)')
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
        '--quiet', action='store_true', help='print nothing, exit status only')
    args = parser.parse_args()
    try:
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
