"""Command-line options that the tools share: tools/train.py's and
tools/test.py's with the meaning mmpose's tools give them, the exported
model's runtime options of the deployment tools, and the argparse types that
check a count or a threshold as it enters (``type=positive_int``), so a
wrong value is refused by name before anything is loaded."""
import argparse
import math
import os
import warnings
from typing import Optional

from mmengine.config import Config


def _int_at_least(minimum: int, text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(f'must be {what}, got {text!r}')
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a count of runs, images,
    persons, a batch size, a side in pixels)."""
    return _int_at_least(1, text, 'a positive integer')


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (e.g. warm-up runs)."""
    return _int_at_least(0, text, 'an integer >= 0')


def score(text: str) -> float:
    """An argparse type: a finite number in [0, 1] (a pose or keypoint
    score threshold; ``nan`` would keep nobody, ``-1`` everybody)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:  # False for nan
        raise argparse.ArgumentTypeError(
            f'must be a score in [0, 1], got {text!r}')
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0 (a tolerance)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(
            f'must be a finite number >= 0, got {text!r}')
    return value


def bf16_kernels_capped() -> Optional[str]:
    """The ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) cap when it
    keeps oneDNN from its bf16 kernels (AVX512-BF16, AMX), else None."""
    cap = os.environ.get('ONEDNN_MAX_CPU_ISA') or os.environ.get(
        'DNNL_MAX_CPU_ISA')
    bf16_isas = ('ALL', 'DEFAULT', 'AVX512_CORE_BF16', 'AVX512_CORE_AMX',
                 'AVX10')
    if not cap or cap.upper().startswith(bf16_isas):
        return None
    return cap


def warn_if_bf16_capped(option: str) -> None:
    """Warn that ``option`` (a bf16 run on the CPU) runs emulated under an
    ISA cap: slower than float32, not faster."""
    cap = bf16_kernels_capped()
    if cap is not None:
        warnings.warn(
            f'{option}: ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from its bf16 '
            'kernels (AVX512-BF16, AMX); bf16 runs emulated, slower than '
            'f32: unset the cap or run in f32')


def add_visualization_args(parser: argparse.ArgumentParser, what: str) -> None:
    """mmpose's ``--show-dir``, ``--show``, ``--interval``, ``--wait-time``;
    ``what`` names the predictions that are drawn."""
    parser.add_argument(
        '--show-dir',
        help=f'draw the {what} into this folder (relative to the work dir)')
    parser.add_argument(
        '--show', action='store_true', help='display them in a window')
    parser.add_argument(
        '--interval',
        type=positive_int,
        default=1,
        help='draw every N-th image')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=1,
        help='seconds each window stays up (--show)')


def apply_visualization_args(cfg: Config, args: argparse.Namespace) -> None:
    """Enable mmpose's visualization hook as those options ask."""
    if args.show or args.show_dir:
        cfg.default_hooks.visualization.update(
            enable=True,
            show=args.show,
            wait_time=args.wait_time,
            interval=args.interval,
            out_dir=args.show_dir)


def precision(text: str) -> str:
    """An argparse type: ``'fp32'`` or ``'bf16'`` (``'f32'``, the former
    spelling, read as ``'fp32'`` with a DeprecationWarning)."""
    from ..models.utils import PRECISIONS, checked_precision
    try:
        return checked_precision(text, '--precision')
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'must be one of {PRECISIONS}, got {text!r}') from None


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """``--backend onnxruntime|openvino`` and ``--precision fp32|bf16`` (for
    :func:`querypose_mm.deployment.build_runtime`)."""
    from ..deployment import RUNTIME_BACKENDS
    parser.add_argument(
        '--backend', choices=RUNTIME_BACKENDS, default='onnxruntime')
    parser.add_argument(
        '--precision',
        type=precision,
        default='fp32',
        metavar='{fp32,bf16}',
        help='OpenVINO\'s inference precision')
