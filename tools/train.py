"""Train a QueryPose model with mmengine's Runner (mmpose-compatible CLI).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--no-validate] [--auto-scale-lr] [--show-dir DIR] [--show]
        [--interval N] [--wait-time S] [--cfg-options k=v ...]
        [--launcher pytorch|slurm]

The flags mean what they mean in mmpose's tools/train.py (--show-dir and
--show draw the validation predictions); in addition --resume without a
path skips a truncated last checkpoint, and the distributed launcher works
on CPU-only machines (gloo).
"""
import argparse

from mmengine.config import Config
from mmengine.runner import Runner

from querypose_mm.engine import (find_resumable_checkpoint,
                                 prepare_cpu_distributed,
                                 remove_interrupted_saves)
from querypose_mm.engine.cli import (add_runner_args, add_visualization_args,
                                     apply_cfg_options,
                                     apply_launcher_and_work_dir,
                                     apply_visualization_args,
                                     export_local_rank,
                                     warn_if_config_bf16_capped)
from querypose_mm.utils import read_checkpoint

# The GradScaler's first loss scale under --amp (dynamic: it halves on an
# overflow and doubles after 2000 clean steps). torch's 2**16 overflows the
# fp16 gradients at a fresh init, skipping the first steps; see
# docs/install.md, "Mixed precision".
AMP_INIT_SCALE = 2.**10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a pose model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir if no path is given')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip validation during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the actual total batch size')
    add_visualization_args(parser, 'validation predictions')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def merge_args(cfg: Config, args) -> Config:
    """Apply the command-line options to the config."""
    apply_launcher_and_work_dir(cfg, args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale',
                                     dict(init_scale=AMP_INIT_SCALE))
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    apply_visualization_args(cfg, args)
    # the options last, as in mmpose's tools/train.py: they override the
    # flags above (tools/test.py merges them first)
    apply_cfg_options(cfg, args)
    if args.resume == 'auto':
        cfg.resume = True
        # None (nothing saved yet) makes mmengine start afresh
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        check_resumable(args.resume)
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def check_resumable(path: str) -> None:
    """A clear error for a checkpoint without the training state that
    mmengine's resume reads (it would fail on ``KeyError: 'meta'``)."""
    if 'meta' not in read_checkpoint(path, map_location='cpu'):
        raise ValueError(
            f'--resume {path}: the file holds weights but no training state '
            '(no "meta": a published or converted model); to train from its '
            'weights, pass --cfg-options load_from=PATH without --resume')


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    warn_if_config_bf16_capped(cfg, train=True)
    runner = Runner.from_cfg(prepare_cpu_distributed(cfg))
    if cfg.resume:
        # after the Runner, which creates the process group: one rank cleans
        remove_interrupted_saves(cfg.work_dir)
    runner.train()


if __name__ == '__main__':
    main()
