"""Run a QueryPose checkpoint on an image, a folder of images or a video.

    python demo/querypose_demo.py INPUT --config CONFIG --checkpoint CKPT \
        [--out-dir demo_out] [--kpt-thr 0.3] [--device cpu|cuda:0]

Uses mmpose's ``MMPoseInferencer`` (bottom-up, no detector): it writes one
picture (or video) per input with keypoints, skeleton and boxes under
``<out-dir>/visualizations`` and the predictions as JSON under
``<out-dir>/predictions``.
"""
import argparse
import os.path as osp

from mmpose.apis import MMPoseInferencer


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('input', help='image file, folder of images or video')
    parser.add_argument('--config', required=True, help='QueryPose config')
    parser.add_argument('--checkpoint', required=True, help='.pth weights')
    parser.add_argument('--out-dir', default='demo_out')
    parser.add_argument(
        '--kpt-thr',
        type=float,
        default=0.3,
        help='draw keypoints whose score is above this')
    parser.add_argument(
        '--max-persons',
        type=int,
        default=None,
        help='draw at most this many persons per image (top pose score)')
    parser.add_argument('--device', default=None)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path, what in ((args.input, 'input'), (args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if not osp.exists(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist')
    inferencer = MMPoseInferencer(
        pose2d=args.config, pose2d_weights=args.checkpoint, device=args.device)
    if args.max_persons is not None:
        inferencer.inferencer.model.head.max_per_img = args.max_persons
    results = []
    for result in inferencer(
            args.input,
            kpt_thr=args.kpt_thr,
            draw_bbox=True,
            vis_out_dir=osp.join(args.out_dir, 'visualizations'),
            pred_out_dir=osp.join(args.out_dir, 'predictions')):
        results.append(result)
    print(f'{len(results)} input(s) done; pictures in '
          f'{osp.join(args.out_dir, "visualizations")}')
    return results


if __name__ == '__main__':
    main()
