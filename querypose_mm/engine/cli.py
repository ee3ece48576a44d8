"""Command-line options that the tools share: tools/train.py's and
tools/test.py's with the meaning mmpose's tools give them, and the exported
model's runtime options of the deployment tools."""
import argparse

from mmengine.config import Config


def add_visualization_args(parser: argparse.ArgumentParser, what: str) -> None:
    """mmpose's ``--show-dir``, ``--show``, ``--interval``, ``--wait-time``;
    ``what`` names the predictions that are drawn."""
    parser.add_argument(
        '--show-dir',
        help=f'draw the {what} into this folder (relative to the work dir)')
    parser.add_argument(
        '--show', action='store_true', help='display them in a window')
    parser.add_argument(
        '--interval', type=int, default=1, help='draw every N-th image')
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


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """``--backend onnxruntime|openvino`` and ``--precision f32|bf16`` (for
    :func:`querypose_mm.deployment.build_runtime`)."""
    from ..deployment.runtimes import OPENVINO_PRECISIONS, RUNTIME_BACKENDS
    parser.add_argument(
        '--backend', choices=RUNTIME_BACKENDS, default='onnxruntime')
    parser.add_argument(
        '--precision',
        choices=OPENVINO_PRECISIONS,
        default='f32',
        help='OpenVINO\'s inference precision')
