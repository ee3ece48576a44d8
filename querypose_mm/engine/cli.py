"""Command-line options that the tools share: tools/train.py's and
tools/test.py's with the meaning mmpose's tools give them (the runner
options ``--cfg-options``, ``--launcher``, ``--local_rank`` and the work
dir, the visualization options), the exported
model's runtime options of the deployment tools, and the argparse types that
check a count or a threshold as it enters (``type=positive_int``), so a
wrong value is refused by name before anything is loaded."""
import argparse
import math
import os
import os.path as osp
import warnings
from typing import List, Optional

from mmengine.config import Config, DictAction


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
            'fp32: unset the cap or run in fp32')


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """mmpose's ``--cfg-options``, ``--launcher`` and ``--local_rank``
    (also spelt ``--local-rank``), as tools/train.py and tools/test.py
    take them; :func:`export_local_rank` after parsing,
    :func:`apply_launcher_and_work_dir` and :func:`apply_cfg_options` on
    the config."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> None:
    """``--local_rank`` (what torch.distributed.launch passes) as the
    ``LOCAL_RANK`` environment variable mmengine reads, unless the launcher
    has set that already."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def apply_launcher_and_work_dir(cfg: Config, args: argparse.Namespace) -> None:
    """``cfg.launcher`` from ``--launcher``; ``cfg.work_dir`` from
    ``--work-dir``, else the config's own, else
    ``./work_dirs/CONFIG_NAME``."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])


def apply_cfg_options(cfg: Config, args: argparse.Namespace) -> None:
    """Merge the ``--cfg-options`` key=value pairs into the config."""
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)


def config_bf16_settings(cfg: Config, train: bool) -> List[str]:
    """The settings of ``cfg`` that ask for bf16: ``model.test_cfg.precision
    ='bf16'`` (for training, only where it validates) and, for training,
    an ``AmpOptimWrapper`` with ``dtype='bfloat16'``."""
    settings = []
    if train:
        wrapper = cfg.get('optim_wrapper') or {}
        if wrapper.get('type') == 'AmpOptimWrapper' and str(
                wrapper.get('dtype')) in ('bfloat16', 'torch.bfloat16'):
            settings.append("optim_wrapper.dtype='bfloat16'")
    test_cfg = (cfg.get('model') or {}).get('test_cfg') or {}
    validates = cfg.get('val_cfg') is not None
    if test_cfg.get('precision') == 'bf16' and (validates or not train):
        settings.append("model.test_cfg.precision='bf16'")
    return settings


def warn_if_config_bf16_capped(cfg: Config, train: bool) -> None:
    """:func:`warn_if_bf16_capped` for each bf16 setting of ``cfg``
    (:func:`config_bf16_settings`) when the run is on the CPU."""
    from mmengine.device import get_device
    if get_device() != 'cpu':
        return
    for setting in config_bf16_settings(cfg, train):
        warn_if_bf16_capped(setting)


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
