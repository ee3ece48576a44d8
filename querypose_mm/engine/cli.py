"""Command-line options that tools/train.py and tools/test.py share, with
the meaning mmpose's tools give them."""
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
