"""Evaluate a QueryPose checkpoint with mmengine's Runner (mmpose's CLI).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out METRICS]
        [--dump PREDICTIONS.pkl] [--show] [--show-dir DIR] [--interval N]
        [--wait-time S] [--cfg-options k=v ...] [--launcher pytorch|slurm]

The flags mean what they mean in mmpose's tools/test.py; in addition the
distributed launcher works on CPU-only machines (gloo).
"""
import argparse
import os.path as osp

import mmengine
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from querypose_mm.engine import prepare_cpu_distributed
from querypose_mm.engine.cli import (add_runner_args, add_visualization_args,
                                     apply_cfg_options,
                                     apply_launcher_and_work_dir,
                                     apply_visualization_args,
                                     export_local_rank,
                                     warn_if_config_bf16_capped)
from querypose_mm.utils import atomic_output


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a pose model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save evaluation logs')
    parser.add_argument(
        '--out', help='save the metrics to this file (.json, .yaml, .pkl)')
    parser.add_argument(
        '--dump', help='dump the predictions to this pickle (.pkl)')
    add_visualization_args(parser, 'predictions of every image')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    if args.dump and not args.dump.endswith(('.pkl', '.pickle')):
        parser.error(f'--dump {args.dump}: the predictions are written as a '
                     'pickle; give a .pkl file name')
    export_local_rank(args)
    return args


def merge_args(cfg: Config, args) -> Config:
    # the options first: --work-dir wins over a work_dir among them
    apply_cfg_options(cfg, args)
    apply_launcher_and_work_dir(cfg, args)
    cfg.load_from = args.checkpoint
    apply_visualization_args(cfg, args)
    if args.dump:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='AtomicDumpResults', out_file_path=args.dump))
    return cfg


class SaveMetrics(Hook):
    """Write the test metrics to a file (mmengine.dump picks the format)."""

    def __init__(self, out_file: str) -> None:
        self.out_file = out_file

    def after_test_epoch(self, runner, metrics=None) -> None:
        if metrics is not None:
            with atomic_output(self.out_file) as partial:
                mmengine.dump(metrics, partial)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist; pass the .pth '
            'file that tools/train.py wrote into its work dir')
    cfg = merge_args(Config.fromfile(args.config), args)
    warn_if_config_bf16_capped(cfg, train=False)
    runner = Runner.from_cfg(prepare_cpu_distributed(cfg))
    if args.out:
        runner.register_hook(SaveMetrics(args.out), 'LOWEST')
    return runner.test()


if __name__ == '__main__':
    main()
