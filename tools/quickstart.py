"""Quick start: train a small QueryPose on real images, evaluate, draw.

    python tools/quickstart.py [--work-dir work_dirs/quickstart]
        [--iters 600] [--img-ids ID ...] [--quick] [--cfg-options k=v ...]

On a 2-core CPU, offline, it trains the CPU-sized config (configs/querypose/
coco/querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py) from scratch on
the bundled images, then evaluates the last checkpoint with mmpose's
CocoMetric on the trained images and on the val split (through the same path
as tools/test.py), draws the predictions of the trained images into
``<work-dir>/test_train/<time>/vis/``, and writes
``<work-dir>/summary.json`` (loss curve, AP, wall times). ``--img-ids``
trains on a subset of the training annotation file; ``--quick`` is a smoke
run for tests (few iterations, no val split).
"""
import argparse
import glob
import os
import os.path as osp
import sys
import time

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from querypose_mm.utils import dump_json_atomically

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from analysis.plot_curves import plot, read_curves  # noqa: E402
from dataset_converters.coco_subset import make_coco_subset  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(
    REPO_ROOT, 'configs/querypose/coco/'
    'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument(
        '--iters', type=positive_int, help='training iterations')
    parser.add_argument(
        '--img-ids',
        type=int,
        nargs='+',
        help='train (and evaluate) on these image ids of the training '
        'annotation file only')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke run: 20 iterations, no val-split evaluation')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def _abs_data(cfg: Config, key: str) -> None:
    """Make a dataloader's data_root absolute (the tool may run anywhere)."""
    dataset = cfg[key].dataset
    if not osp.isabs(dataset.data_root):
        dataset.data_root = osp.join(REPO_ROOT, dataset.data_root)


def shorten_run(cfg: Config, iters: int) -> None:
    """The config's run in ``iters`` iterations: its lr steps at the same
    fractions of the run, a warm-up of at most a quarter of it, the
    checkpoint at its end."""
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    for scheduler in cfg.param_scheduler:
        if scheduler.type == 'MultiStepLR':
            scheduler.milestones = [
                int(iters * m / scheduler.end) for m in scheduler.milestones
            ]
            scheduler.end = iters
        if scheduler.type == 'LinearLR':
            scheduler.end = min(scheduler.end, max(iters // 4, 1))
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = min(cfg.default_hooks.logger.interval,
                                            max(iters // 10, 1))


def build_cfg(args) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = osp.abspath(args.work_dir)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        _abs_data(cfg, key)
    iters = args.iters or (20 if args.quick else None)
    if iters is not None:
        shorten_run(cfg, iters)
    # no validation during training: evaluation follows, on two splits
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.img_ids:
        train = cfg.train_dataloader.dataset
        subset = osp.join(cfg.work_dir, 'train_subset.json')
        make_coco_subset(
            osp.join(train.data_root, train.ann_file), subset, args.img_ids)
        train.ann_file = subset
    return cfg


def evaluate(cfg: Config,
             checkpoint: str,
             dataset: dict,
             name: str,
             show_dir: str = None) -> dict:
    """tools/test.py's path: a fresh Runner that loads the checkpoint."""
    test_cfg = cfg.copy()
    test_cfg.work_dir = osp.join(cfg.work_dir, f'test_{name}')
    test_cfg.load_from = checkpoint
    test_cfg.test_dataloader = dict(
        batch_size=1,
        num_workers=0,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
        dataset=dataset)
    if show_dir:
        test_cfg.default_hooks.visualization.update(
            enable=True, out_dir=show_dir, interval=1, kpt_thr=0.3)
    test_cfg.visualizer.update(name=f'visualizer_{name}_{time.time()}')
    runner = Runner.from_cfg(test_cfg)
    return runner.test()


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    os.makedirs(cfg.work_dir, exist_ok=True)

    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_seconds = time.time() - start
    losses = [
        float(v) for v in runner.message_hub.get_scalar('train/loss').data[0]
    ]
    checkpoint = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')

    train_set = dict(cfg.train_dataloader.dataset)
    train_set.update(
        test_mode=True, pipeline=cfg.test_dataloader.dataset.pipeline)
    metrics = dict(
        train_images=evaluate(cfg, checkpoint, train_set, 'train', 'vis'))
    if not args.quick:
        metrics['val_split'] = evaluate(cfg, checkpoint,
                                        dict(cfg.test_dataloader.dataset),
                                        'val')
    window = max(min(20, len(losses) // 4), 1)
    summary = dict(
        config=args.config,
        iterations=cfg.train_cfg.max_iters,
        train_ann_file=train_set['ann_file'],
        train_seconds=round(train_seconds, 1),
        total_seconds=round(time.time() - start, 1),
        loss_first=sum(losses[:window]) / window,
        loss_last=sum(losses[-window:]) / window,
        loss_curve=losses,
        metrics={
            split: {
                k: float(v)
                for k, v in values.items()
            }
            for split, values in metrics.items()
        },
        checkpoint=checkpoint,
        # the visualization hook writes under the test run's timestamp
        pictures=sorted(
            glob.glob(osp.join(cfg.work_dir, 'test_train', '*', 'vis')))[-1])
    curves = read_curves(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    summary['loss_curve_png'] = osp.join(cfg.work_dir, 'loss_curve.png')
    plot(
        curves, ['loss'],
        summary['loss_curve_png'],
        title=f'quick start: {osp.basename(args.config)}')
    dump_json_atomically(summary, osp.join(cfg.work_dir, 'summary.json'))
    print(f"\nquick start: {summary['iterations']} iterations in "
          f"{summary['train_seconds']:.0f} s, loss {summary['loss_first']:.2f}"
          f" -> {summary['loss_last']:.2f}")
    for split, values in summary['metrics'].items():
        print(f"  {split}: AP {values.get('coco/AP', float('nan')):.3f}  "
              f"AP50 {values.get('coco/AP .5', float('nan')):.3f}")
    print(f"  loss curve: {summary['loss_curve_png']}")
    print(f"  pictures: {summary['pictures']}\n  summary: "
          f"{osp.join(cfg.work_dir, 'summary.json')}")
    return summary


if __name__ == '__main__':
    main()
