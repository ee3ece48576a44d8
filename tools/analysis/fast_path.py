"""Measure QueryPose's score-threshold decoding (``test_cfg.score_thr``) on
trained weights: queries decoded per image, latency against full decoding,
and whether the persons above the threshold are identical.

    python tools/analysis/fast_path.py CONFIG CHECKPOINT [--score-thr 0.1]
        [--images data/coco_mini/val2017] [--runs 5] [--quick]
        [--out fast_path.json]

Every image goes through the config's test pipeline; each is predicted with
full decoding (its persons then cut at the threshold) and with
``score_thr`` (the config's, else ``--score-thr``, else the visualizer's
``pose_score_thr``), alternately (full, fast, full, fast ...) so that both
see the same machine load. The fast path is exact where the box path does
not read the keypoint decoders (the light version, the ``'box_only'``
flow): the tool checks that it keeps the same persons in the same order
(boxes equal) and reports the largest difference of keypoints and scores,
which is float rounding (the decoders run on fewer queries). "Decoded"
counts the queries the keypoint decoders run on, per stage.
``--quick`` (tests) takes two images and one run.
"""
import argparse
import os.path as osp
import time
from collections import defaultdict

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.dataset import Compose, pseudo_collate

import querypose_mm  # noqa: F401  (registers the modules)
from mmpose.apis import init_model
from querypose_mm.models.task_modules import persons_per_image
from querypose_mm.utils import dump_json_atomically, list_images


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--score-thr',
        type=float,
        help='pose score kept (default: the config\'s test_cfg.score_thr, '
        'else its visualizer.pose_score_thr)')
    parser.add_argument(
        '--images',
        default=osp.join(
            osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
            'data', 'coco_mini', 'val2017'),
        help='folder of images')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--out', help='write the figures as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    return args


def count_decoded(head) -> dict:
    """Hooks that add up the queries the keypoint decoders run on and the
    passes of the first box decoder."""
    counts = defaultdict(int)

    def count_queries(module, inputs, _output):
        counts['queries'] += inputs[0].size(0)

    def count_passes(module, inputs, _output):
        counts['passes'] += 1

    handles = [
        decoder.register_forward_hook(count_queries)
        for decoder in head.keypoint_decoders
    ]
    handles.append(head.box_decoders[0].register_forward_hook(count_passes))
    return counts, handles


def main(argv=None):
    args = parse_args(argv)
    model = init_model(
        args.config,
        args.checkpoint,
        device='cpu',
        cfg_options=args.cfg_options)
    head = model.head
    test_cfg = dict(model.cfg.model.get('test_cfg', {}))
    score_thr = test_cfg.pop('score_thr', None)
    if args.score_thr is not None:
        score_thr = args.score_thr
    if score_thr is None:
        score_thr = model.cfg.visualizer.get('pose_score_thr')
    if score_thr is None:
        raise ValueError('give --score-thr or set test_cfg.score_thr (or '
                         'visualizer.pose_score_thr) in the config')
    paths = [osp.join(args.images, name) for name in list_images(args.images)]
    if not paths:
        raise FileNotFoundError(f'no images in {args.images!r}')
    paths = paths[:2] if args.quick else paths
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    meta = model.dataset_meta
    test_cfgs = dict(full=test_cfg, fast=dict(test_cfg, score_thr=score_thr))
    counts, handles = count_decoded(head)
    times = defaultdict(list)
    per_image = []
    for path in paths:
        # the input of mmpose's inference_bottomup, which runs test_step once
        batch = pseudo_collate([pipeline(dict(img_path=path, **meta))])
        preds, decoded, passes = {}, {}, {}
        for _ in range(args.runs):
            for mode, test_cfg in test_cfgs.items():
                model.test_cfg = test_cfg
                counts['queries'] = counts['passes'] = 0
                start = time.perf_counter()
                with torch.no_grad():
                    pred = model.test_step(batch)[0].pred_instances
                preds[mode] = pred[torch.from_numpy(
                    pred.bbox_scores >= score_thr)]
                times[mode].append(time.perf_counter() - start)
                decoded[mode] = counts['queries'] / head.num_stages
                passes[mode] = counts['passes']
        same = np.array_equal(preds['fast'].bboxes, preds['full'].bboxes)
        diffs = {
            key:
            float(
                np.abs(preds['fast'][key] - preds['full'][key]).max(
                    initial=0)) if same else float('inf')
            for key in ('keypoints', 'keypoint_scores', 'bbox_scores')
        }
        per_image.append(
            dict(
                image=osp.basename(path),
                queries_decoded_per_stage=decoded['fast'],
                box_passes=passes['fast'],
                persons=len(preds['full']),
                same_persons=bool(same),
                max_keypoint_diff_px=diffs['keypoints'],
                max_score_diff=max(diffs['keypoint_scores'],
                                   diffs['bbox_scores'])))
    for handle in handles:
        handle.remove()
    full_ms = 1000 * float(np.median(times['full']))
    fast_ms = 1000 * float(np.median(times['fast']))
    decoded = [r['queries_decoded_per_stage'] for r in per_image]
    summary = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        num_queries=head.num_queries,
        score_thr=score_thr,
        light=head.score_thr_is_exact,
        images=len(per_image),
        persons_mean=float(np.mean([r['persons'] for r in per_image])),
        runs=args.runs,
        queries_decoded_mean=float(np.mean(decoded)),
        queries_decoded_max=float(np.max(decoded)),
        box_passes_mean=float(np.mean([r['box_passes'] for r in per_image])),
        max_per_img=persons_per_image(model.test_cfg, head.num_queries),
        same_persons=all(r['same_persons'] for r in per_image),
        max_keypoint_diff_px=max(r['max_keypoint_diff_px'] for r in per_image),
        max_score_diff=max(r['max_score_diff'] for r in per_image),
        full_ms_median=full_ms,
        fast_ms_median=fast_ms,
        fast_over_full=fast_ms / full_ms,
        per_image=per_image)
    print(f"{len(per_image)} images, {args.runs} run(s) each, alternating; "
          f"{head.num_queries} queries, max_per_img "
          f"{summary['max_per_img']}, score_thr={score_thr}, "
          f"{'light' if summary['light'] else 'full'} version\n"
          'queries decoded per stage: mean '
          f"{summary['queries_decoded_mean']:.1f}, max "
          f"{summary['queries_decoded_max']:.0f} of {head.num_queries}; "
          'passes of the box decoders: mean '
          f"{summary['box_passes_mean']:.2f} (full decoding: 1)\n"
          f'latency (median, test_step): full {full_ms:.1f} ms, fast '
          f'{fast_ms:.1f} ms, ratio {fast_ms / full_ms:.2f}\n'
          f"same persons, same order: {summary['same_persons']}; max "
          f"difference: keypoints {summary['max_keypoint_diff_px']:.2g} px, "
          f"scores {summary['max_score_diff']:.2g}")
    if args.out:
        dump_json_atomically(summary, args.out)
    return summary


if __name__ == '__main__':
    main()
