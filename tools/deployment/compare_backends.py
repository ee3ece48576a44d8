"""Check an exported model against its PyTorch checkpoint on real images.

    python tools/deployment/compare_backends.py CONFIG CHECKPOINT ONNX \
        [--backend onnxruntime|openvino] [--precision fp32|bf16] \
        [--images data/coco_mini/val2017] [--max-images N] \
        [--tolerance 1e-3] [--out diff.json]

Each image goes through mmpose's ``inference_bottomup`` (the config's test
pipeline) and through the runtime (``QueryPoseOnnxRuntime`` or
``QueryPoseOpenVINO`` at ``--precision``); the tool reports, over all
images, whether both keep the same persons in the same order, the largest
keypoint and box difference relative to the person's box size (the larger
side), and the largest score difference. It exits with status 1 when the
persons differ or a person differs by more than ``--tolerance`` of its box
size. bf16 reorders near-tied queries, so judge it by its AP instead
(``tools/deployment/test_runtime.py``). A runtime that keeps another number
of persons than the checkpoint (an export with another ``max_per_img``) is
reported, image by image, and the tool exits with status 1.
"""
import argparse
import os.path as osp
import sys

import cv2
import numpy as np

import querypose_mm  # noqa: F401  (registers the modules)
from mmpose.apis import inference_bottomup, init_model
from querypose_mm.deployment import build_runtime, check_config_fits
from querypose_mm.engine.cli import (add_runtime_args, non_negative_float,
                                     positive_int)
from querypose_mm.utils import (check_output_file, dump_json_atomically,
                                list_images)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('onnx')
    add_runtime_args(parser)
    parser.add_argument(
        '--images',
        default=osp.join(
            osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
            'data', 'coco_mini', 'val2017'))
    parser.add_argument(
        '--max-images', type=positive_int, help='compare the first N images')
    parser.add_argument(
        '--tolerance',
        type=non_negative_float,
        default=1e-3,
        help='largest allowed difference, relative to the box size')
    parser.add_argument('--out', help='write the figures as JSON')
    return parser.parse_args(argv)


def compare(persons: dict, pytorch) -> dict:
    """Differences between the runtime's persons and mmpose's
    ``pred_instances`` of one image (of the first persons of both, where
    their numbers differ)."""
    counts = len(pytorch.bboxes), len(persons['bboxes'])
    shared = min(counts)
    result = dict(
        persons=counts[0],
        runtime_persons=counts[1],
        same_count=counts[0] == counts[1],
        max_keypoint_rel=0.0,
        max_box_rel=0.0,
        max_keypoint_px=0.0,
        max_score_diff=0.0)
    if shared == 0:
        return result
    persons = {key: value[:shared] for key, value in persons.items()}
    pytorch = pytorch[:shared]
    boxes = pytorch.bboxes
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    size = np.maximum(size, 1.0)
    keypoints = np.abs(persons['keypoints'] - pytorch.keypoints).max((1, 2))
    box = np.abs(persons['bboxes'] - boxes).max(1)
    result.update(
        max_keypoint_rel=float((keypoints / size).max()),
        max_box_rel=float((box / size).max()),
        max_keypoint_px=float(keypoints.max()),
        max_score_diff=float(
            np.abs(persons['bbox_scores'] - pytorch.bbox_scores).max()))
    return result


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(args.images):
        raise FileNotFoundError(f'--images {args.images!r} is not a folder')
    paths = [osp.join(args.images, name)
             for name in list_images(args.images)][:args.max_images]
    if args.out:
        check_output_file(args.out, '--out')
    model = init_model(args.config, args.checkpoint, device='cpu')
    runtime = build_runtime(args.onnx, args.backend, args.precision)
    check_config_fits(runtime, model.cfg.model, f'config {args.config}')
    per_image = {}
    for path in paths:
        image = cv2.imread(path)
        if image is None:
            raise ValueError(f'{path} is not a readable image; remove it '
                             'from --images or pass another folder')
        pytorch = inference_bottomup(model, image)[0].pred_instances
        per_image[osp.basename(path)] = compare(runtime(image), pytorch)
    rows = per_image.values()
    summary = dict(
        images=len(per_image),
        same_persons=all(r['same_count'] for r in rows)
        and all(r['max_box_rel'] <= args.tolerance for r in rows),
        max_keypoint_rel=max(r['max_keypoint_rel'] for r in rows),
        max_box_rel=max(r['max_box_rel'] for r in rows),
        max_keypoint_px=max(r['max_keypoint_px'] for r in rows),
        max_score_diff=max(r['max_score_diff'] for r in rows),
        tolerance=args.tolerance,
        backend=args.backend,
        precision=args.precision if args.backend == 'openvino' else 'fp32',
        per_image=per_image)
    print(f"{summary['images']} images, {args.backend} "
          f"{summary['precision']}: "
          f"same persons in the same order: "
          f"{summary['same_persons']}; largest difference relative to the "
          f"box size: keypoints {summary['max_keypoint_rel']:.2g}, boxes "
          f"{summary['max_box_rel']:.2g} (keypoints "
          f"{summary['max_keypoint_px']:.2g} px); scores "
          f"{summary['max_score_diff']:.2g}")
    if args.out:
        dump_json_atomically(summary, args.out)
    within = max(summary['max_keypoint_rel'],
                 summary['max_box_rel']) <= args.tolerance
    other_counts = {
        name: (row['persons'], row['runtime_persons'])
        for name, row in per_image.items() if not row['same_count']
    }
    if other_counts:
        name, (expected, got) = next(iter(other_counts.items()))
        print(
            f'FAILED: the person counts differ on {len(other_counts)} '
            f'image(s), e.g. {name}: PyTorch {expected}, {args.backend} '
            f'{got} (an export with another max_per_img? export again with '
            'this config)',
            file=sys.stderr)
        sys.exit(1)
    if not (summary['same_persons'] and within):
        print(
            f'FAILED: a difference exceeds {args.tolerance} of the box '
            'size',
            file=sys.stderr)
        sys.exit(1)
    return summary


if __name__ == '__main__':
    main()
