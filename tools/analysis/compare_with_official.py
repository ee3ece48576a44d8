"""Our QueryPose head against the official code, side by side in float64.

    python tools/analysis/compare_with_official.py --official-src DIR
        [--rev REV] [--config CONFIG] [--cfg-options k=v ...]
        [--versions light full] [--image-sizes 512x640 448x576]
        [--persons 3] [--seed 0] [--official-yaml NAME]

DIR is a checkout of github buptxyb666/QueryPose: a work tree, whose files
are read as they are, or (with ``--rev``) any git checkout of it, a bare or
mirror git directory included, whose files at REV are extracted with
``git show`` into a temporary folder. Nothing of the official code is kept
in this repository: its ``head.py``, ``loss.py``, ``real_nvp.py``,
``config.py`` and ``util/`` are imported from DIR, with stand-ins for the
detectron2 / fvcore pieces they import where those libraries are not
installed (``official_comparison/standins.py``; ``--standins-always``
also where they are, since detectron2's ``Boxes`` rounds the RoI boxes to
float32).

For each version (light: ``LIGHT_VERSION: True`` and our
``keypoint_decoder.update_instance_query=False``; full: both the other way)
the official decoder, criterion and learnable proposals are built from the
official yaml (``--official-yaml`` in DIR's ``configs/``) in float64 with
seeded weights; their state dict goes through the project's converter
(``querypose_mm.utils.official_checkpoint``) into our head built from
``--config`` (with ``--cfg-options``). Both then run one training forward +
backward and inference on the same seeded FPN features (P2-P5 of a padded
batch of ``--image-sizes``) and persons (``--persons`` per image). The
report lists every per-stage loss term, the matched (query, gt) pairs of
every stage, the gradients w.r.t. the features, the SPEGM BatchNorm
running statistics after the step and the inferred keypoints and pose
scores of every query. It exits 0 when every figure is within its
threshold (loss terms 1e-5 relative, the same matches, gradients and
BatchNorm statistics 1e-5 of their largest entry, keypoints 1e-6 px,
scores 1e-6), 1 otherwise.

Memory and time grow with the number of decoded queries (the 6-conv stack
runs on a 14x14 RoI per decoded query and stage) far more than with the
image size; docs/official_equivalence.md gives both for the defaults (one
512x640 image, 100 queries).
"""
import argparse
import os.path as osp
import resource
import sys
import time

import torch
from mmengine.config import Config, DictAction
from official_comparison import (compare_version, exit_code, format_version,
                                 import_official, make_inputs, official_tree,
                                 resolve_revision, standin_modules, verdict)
from official_comparison.official_source import DEFAULT_YAML

import querypose_mm  # noqa: F401  (registers the modules)
from mmpose.utils import register_all_modules
from querypose_mm.engine.cli import positive_int

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join('configs', 'querypose', 'coco',
                          'querypose_r50-fpn_8xb2-280k_coco-800x1333.py')


def image_size(text: str) -> tuple:
    """``'HxW'`` -> (h, w)."""
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'an image size is HxW, e.g. 512x640, got {text!r}') from None
    if h < 32 or w < 32:
        raise argparse.ArgumentTypeError(f'{text}: at least 32x32')
    return h, w


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--official-src',
        required=True,
        help='checkout of github buptxyb666/QueryPose (work tree, or any '
        'git checkout with --rev)')
    parser.add_argument(
        '--rev', help='official revision to extract, e.g. e249749 or bf0814f')
    parser.add_argument(
        '--config',
        default=osp.join(REPO_ROOT, DEFAULT_CONFIG),
        help='our config (default: the R50 COCO config)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides of our config, e.g. model.head.train_regime=...')
    parser.add_argument(
        '--versions',
        nargs='+',
        choices=['light', 'full'],
        default=['light', 'full'])
    parser.add_argument(
        '--image-sizes',
        nargs='+',
        type=image_size,
        default=[(512, 640)],
        help='HxW of each image of the batch (the batch is padded to the '
        'largest, rounded up to 32)')
    parser.add_argument(
        '--persons', type=positive_int, default=3, help='persons per image')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--standins-always',
        action='store_true',
        help='use the detectron2 / fvcore stand-ins even where those are '
        'installed (detectron2\'s Boxes rounds the RoI boxes to float32)')
    parser.add_argument(
        '--official-yaml',
        default=DEFAULT_YAML,
        help='official config in DIR/projects/querypose/configs')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    register_all_modules()
    head = cfg.model.head
    commit = resolve_revision(args.official_src, args.rev) if args.rev \
        else None
    inputs = make_inputs(args.image_sizes, args.persons, head.num_keypoints,
                         head.in_channels, args.seed)
    start = time.perf_counter()
    results = []
    standins = standin_modules(replace_installed=args.standins_always)
    source = official_tree(args.official_src, args.rev)
    with standins as replaced, source as project:
        official = import_official(project)
        print(f'official: {args.official_src}' +
              (f' at {args.rev} ({commit})' if commit else '') +
              f', {official.api} API, {args.official_yaml}; stand-ins for: '
              f'{", ".join(replaced) or "none"}')
        print(f'ours: {osp.relpath(args.config)}' +
              ''.join(f' {k}={v}' for k, v in args.cfg_options.items()))
        images = ' '.join(f'{h}x{w}' for h, w in inputs.image_hw)
        levels = ' '.join('x'.join(map(str, f.shape[2:]))
                          for f in inputs.feats)
        print(f'float64, torch {torch.__version__}, '
              f'{torch.get_num_threads()} threads; {head.num_queries} '
              f'queries, {head.num_stages} stages; images {images} '
              f'(features P2-P5 {levels}), {args.persons} persons each, '
              f'seed {args.seed}\n')
        for version in args.versions:
            results.append(
                compare_version(official, cfg, version == 'light', inputs,
                                args.seed, args.official_yaml))
            print(format_version(results[-1]) + '\n', flush=True)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(verdict(results))
    print(f'{time.perf_counter() - start:.0f} s, peak memory (RSS) '
          f'{peak_gb:.1f} GB')
    return exit_code(results)


if __name__ == '__main__':
    sys.exit(main())
