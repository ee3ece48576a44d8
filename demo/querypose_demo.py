"""Run a QueryPose checkpoint on an image, a folder, a video or a webcam.

    python demo/querypose_demo.py INPUT --config CONFIG --checkpoint CKPT \
        [--out-dir demo_out] [--show] [--pose-thr 0.1] [--kpt-thr 0.3] \
        [--max-persons N] [--device cpu|cuda:0]

INPUT is an image, a folder of images, a video file, or ``webcam`` /
``webcam:ID`` (a camera; the window is shown). A thin layer over mmpose's
``MMPoseInferencer`` (bottom-up, no detector): it writes a picture per image,
or the video with the poses drawn, under ``<out-dir>/visualizations`` and the
predictions (every person, whatever its score) as JSON under
``<out-dir>/predictions``, and shows a progress bar with frames per second.
Pictures draw the persons whose pose score reaches ``--pose-thr`` (default:
the config's ``visualizer.pose_score_thr``).
"""
import argparse
import os
import os.path as osp
from typing import Optional

import cv2
from mmengine.utils import ProgressBar

from mmpose.apis import MMPoseInferencer

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'input', help='image, folder of images, video, or webcam[:ID]')
    parser.add_argument('--config', required=True, help='QueryPose config')
    parser.add_argument('--checkpoint', required=True, help='.pth weights')
    parser.add_argument('--out-dir', default='demo_out')
    parser.add_argument(
        '--show', action='store_true', help='show the drawn frames')
    parser.add_argument(
        '--pose-thr',
        type=float,
        default=None,
        help='draw persons whose pose score reaches this')
    parser.add_argument(
        '--kpt-thr',
        type=float,
        default=0.3,
        help='draw keypoints whose score reaches this')
    parser.add_argument(
        '--max-persons',
        type=int,
        default=None,
        help='keep at most this many persons per image (top pose score)')
    parser.add_argument('--device', default=None, help='e.g. cpu, cuda:0')
    return parser.parse_args(argv)


def count_frames(source: str) -> Optional[int]:
    """Images in a folder, frames of a video, 1 for an image, None for a
    camera (no end known)."""
    if source.startswith('webcam'):
        return None
    if osp.isdir(source):
        return sum(name.lower().endswith(IMAGE_SUFFIXES)
                   for name in os.listdir(source))
    if source.lower().endswith(IMAGE_SUFFIXES):
        return 1
    video = cv2.VideoCapture(source)
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    video.release()
    return frames or None


def main(argv=None):
    args = parse_args(argv)
    checks = [(args.config, 'config'), (args.checkpoint, 'checkpoint')]
    if not args.input.startswith('webcam'):
        checks.append((args.input, 'input'))
    for path, what in checks:
        if not osp.exists(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist')
    inferencer = MMPoseInferencer(
        pose2d=args.config, pose2d_weights=args.checkpoint, device=args.device)
    pose_inferencer = inferencer.inferencer
    if args.max_persons is not None:
        pose_inferencer.model.head.max_per_img = args.max_persons
    if args.pose_thr is not None:
        if not hasattr(pose_inferencer.visualizer, 'pose_score_thr'):
            raise ValueError('--pose-thr needs the config\'s visualizer to be '
                             f'QueryPoseVisualizer, not '
                             f'{type(pose_inferencer.visualizer).__name__}')
        pose_inferencer.visualizer.pose_score_thr = args.pose_thr
    total = count_frames(args.input)
    progress = ProgressBar(total or 0)
    results = []
    for result in inferencer(
            args.input,
            show=args.show,
            kpt_thr=args.kpt_thr,
            draw_bbox=True,
            vis_out_dir=osp.join(args.out_dir, 'visualizations'),
            pred_out_dir=osp.join(args.out_dir, 'predictions')):
        results.append(result)
        progress.update()
    if not results and args.input.startswith('webcam'):
        raise RuntimeError(
            f'{args.input}: the camera could not be opened (or gave no '
            'frame); give its id as webcam:ID')
    print(f'\n{len(results)} frame(s) done; drawn in '
          f'{osp.join(args.out_dir, "visualizations")}, predictions in '
          f'{osp.join(args.out_dir, "predictions")}')
    return results


if __name__ == '__main__':
    main()
