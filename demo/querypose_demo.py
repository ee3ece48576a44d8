"""Run a QueryPose checkpoint on an image, a folder, a video or a webcam.

    python demo/querypose_demo.py INPUT --config CONFIG --checkpoint CKPT \
        [--out-dir demo_out] [--show] [--pose-thr 0.1] [--kpt-thr 0.3] \
        [--max-persons N] [--batch-size 1] [--precision fp32|bf16] \
        [--device cpu|cuda:0]
    python demo/querypose_demo.py INPUT --backend onnxruntime|openvino \
        --onnx querypose.onnx [--precision fp32|bf16] [same options]

INPUT is an image, a folder of images, a video file, or ``webcam`` /
``webcam:ID`` (a camera; the window is shown). A thin layer over mmpose's
``MMPoseInferencer`` (bottom-up, no detector): it writes a picture per image,
or the video with the poses drawn, under ``<out-dir>/visualizations`` and the
predictions as JSON under ``<out-dir>/predictions``, and shows a progress
bar with frames per second. Pictures draw the persons whose pose score
reaches ``--pose-thr`` (default: the config's
``visualizer.pose_score_thr``). Where that is exact (a box path that does
not read the keypoint decoders: the light version, or the ``'box_only'``
test flow of the paper configs and the official models) the PyTorch backend
decodes keypoints only for the queries that can reach it
(``test_cfg.score_thr``), and the JSON holds those persons; otherwise, with
``--all-persons`` and with the exported model, it holds every person,
whatever its score.

``--backend onnxruntime`` or ``openvino`` runs a model exported by
``tools/deployment/pytorch2onnx.py`` with ``QueryPoseOnnxRuntime`` or
``QueryPoseOpenVINO`` (at ``--precision``: bf16 uses AMX or AVX512-BF16;
their own pre- and post-processing) and draws with the visualizer of the
config stored in the ONNX file (or ``--config``), with the same options and
outputs. ``--batch-size`` runs that many images or video frames at once (a
camera runs frame by frame), in batches of one input shape, so that each gets
the persons it gets alone (padding an image to a larger one's size would
change its features near the edges).

A folder is listed with its sub-folders (symbolic links followed) but
without the demo's own output folders, should ``--out-dir`` lie inside it;
a folder without images is an error. An image that cannot be read is
skipped with an error line naming it, the other images are done, and the
demo then exits with status 1.
"""
import argparse
import contextlib
import itertools
import os.path as osp
import sys
from typing import Iterator, List, Optional, Tuple

import cv2
import mmcv
import mmengine
import numpy as np
from mmengine.structures import InstanceData
from mmengine.utils import ProgressBar

from mmpose.apis import MMPoseInferencer
from mmpose.apis.inference import dataset_meta_from_config
from mmpose.registry import VISUALIZERS
from mmpose.structures import PoseDataSample, split_instances
from querypose_mm.deployment import (RUNTIME_BACKENDS, build_runtime,
                                     runtime_config)
from querypose_mm.deployment.runtimes import same_shape_groups
from querypose_mm.engine.cli import (positive_int, precision, score,
                                     warn_if_bf16_capped)
from querypose_mm.utils import (IMAGE_SUFFIXES, atomic_output, check_not_input,
                                check_output_dir, list_images,
                                prediction_names)

# MMPoseInferencer's drawing defaults, which the ONNX Runtime path repeats
RADIUS, THICKNESS = 3, 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog='An image that cannot be read is skipped with an error line '
        'naming it; the others are done, then the demo exits with status 1.')
    parser.add_argument(
        'input', help='image, folder of images, video, or webcam[:ID]')
    parser.add_argument(
        '--backend',
        choices=('pytorch', ) + RUNTIME_BACKENDS,
        default='pytorch',
        help='pytorch: --config and --checkpoint; onnxruntime, openvino: '
        '--onnx')
    parser.add_argument(
        '--config',
        help='QueryPose config (exported model: overrides the stored one)')
    parser.add_argument('--checkpoint', help='.pth weights (pytorch)')
    parser.add_argument(
        '--onnx', help='model from tools/deployment/pytorch2onnx.py')
    parser.add_argument(
        '--precision',
        type=precision,
        default='fp32',
        metavar='{fp32,bf16}',
        help='pytorch: model.test_cfg.precision (bf16: float32 box '
        'decoders and keypoint heads); openvino: inference precision')
    parser.add_argument(
        '--batch-size',
        type=positive_int,
        default=1,
        help='images or video frames run at once')
    parser.add_argument('--out-dir', default='demo_out')
    parser.add_argument(
        '--show', action='store_true', help='show the drawn frames')
    parser.add_argument(
        '--pose-thr',
        type=score,
        default=None,
        help='draw persons whose pose score reaches this')
    parser.add_argument(
        '--all-persons',
        action='store_true',
        help='decode and write every person, not only those above '
        '--pose-thr')
    parser.add_argument(
        '--kpt-thr',
        type=score,
        default=0.3,
        help='draw keypoints whose score reaches this')
    parser.add_argument(
        '--max-persons',
        type=positive_int,
        default=None,
        help='keep at most this many persons per image (top pose score; '
        'an exported model: at most the count it was exported with)')
    parser.add_argument(
        '--device',
        default=None,
        help='pytorch: e.g. cpu, cuda:0; onnxruntime: cpu or cuda '
        '(CUDAExecutionProvider); openvino: cpu')
    args = parser.parse_args(argv)
    if args.batch_size > 1 and args.input.startswith('webcam'):
        parser.error('a camera runs frame by frame: drop --batch-size')
    if args.precision != 'fp32' and args.backend == 'onnxruntime':
        parser.error(f'--precision {args.precision}: ONNX Runtime runs the '
                     'file in fp32; use --backend openvino or pytorch')
    return args


def output_dirs(out_dir: str) -> Tuple[str, str]:
    """The folders of the drawn pictures and of the predictions."""
    return (osp.join(out_dir,
                     'visualizations'), osp.join(out_dir, 'predictions'))


def image_inputs(source: str, out_dir: str) -> Optional[List[str]]:
    """The images of an image or folder input, as paths relative to the
    folder (the image's own folder for one image), the demo's output
    folders left out; None for a video or a camera. Listed once per run."""
    if osp.isdir(source):
        return list_images(source, exclude=output_dirs(out_dir))
    if source.lower().endswith(IMAGE_SUFFIXES):
        return [osp.basename(source)]
    return None


def count_frames(source: str, images: Optional[List[str]]) -> Optional[int]:
    """The images, the frames of a video, or None for a camera (no end
    known)."""
    if images is not None:
        return len(images)
    if source.startswith('webcam'):
        return None
    video = cv2.VideoCapture(source)
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    video.release()
    return frames or None


def check_args(args) -> None:
    """Fail before loading anything on a missing file or option."""
    if args.backend == 'pytorch':
        needed = [(args.config, '--config'), (args.checkpoint, '--checkpoint')]
    else:
        needed = [(args.onnx, '--onnx')]
        if args.config is not None:
            needed.append((args.config, '--config'))
    if not args.input.startswith('webcam'):
        needed.append((args.input, 'input'))
    for path, what in needed:
        if path is None:
            raise ValueError(f'--backend {args.backend} needs {what}')
        if not osp.exists(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist')
    check_output_dir(args.out_dir, '--out-dir')
    if osp.isfile(args.input):
        # an image or a video drawn into its own place
        check_not_input(
            osp.join(output_dirs(args.out_dir)[0], osp.basename(args.input)),
            'drawn output', args.input, 'input')
    if args.precision == 'bf16' and args.backend == 'pytorch' and (
            args.device is None or args.device == 'cpu'):
        warn_if_bf16_capped('--precision bf16')


def set_pose_thr(visualizer, pose_thr: Optional[float]) -> None:
    if pose_thr is None:
        return
    if not hasattr(visualizer, 'pose_score_thr'):
        raise ValueError('--pose-thr needs the config\'s visualizer to be '
                         f'QueryPoseVisualizer, not '
                         f'{type(visualizer).__name__}')
    visualizer.pose_score_thr = pose_thr


Frame = Tuple[str, np.ndarray, float]


def read_frames(source: str, images: Optional[List[str]],
                unreadable: List[str]) -> Iterator[Frame]:
    """(name, BGR frame, fps) of the :func:`image_inputs` ``images`` (fps 0),
    else of a video or a camera. An image that cannot be read is skipped
    with an error line naming it, and added to ``unreadable``."""
    if images is not None:
        folder = source if osp.isdir(source) else osp.dirname(source)
        for name in images:
            path = osp.join(folder, name)
            image = cv2.imread(path)
            if image is None:
                print(
                    f'\nerror: {path} is not a readable image; skipped',
                    file=sys.stderr)
                unreadable.append(path)
                continue
            yield name, image, 0.0
        return
    camera = source.startswith('webcam')
    video = cv2.VideoCapture(
        int(source.partition(':')[2] or 0) if camera else source)
    fps = video.get(cv2.CAP_PROP_FPS) or 30.0
    name = 'webcam.mp4' if camera else osp.basename(source)
    frames = 0
    try:
        while True:
            ok, frame = video.read()
            if not ok:
                break
            frames += 1
            yield name, frame, fps
    finally:
        video.release()
    if frames == 0:
        raise RuntimeError(
            f'{source}: the camera could not be opened (or gave no frame); '
            'give its id as webcam:ID' if camera else
            f'{source}: no frame could be read: not a video, or an empty or '
            'damaged one')


def batches(frames: Iterator[Frame], size: int) -> Iterator[List[Frame]]:
    """Consecutive frames in lists of ``size`` (the last may be shorter)."""
    return iter(lambda: list(itertools.islice(frames, size)), [])


def pytorch_frames(args, frames: Iterator[Frame]) -> Iterator[tuple]:
    """(name, fps, drawn RGB frame, predictions) of mmpose's
    ``MMPoseInferencer``."""
    pose_inferencer = MMPoseInferencer(
        pose2d=args.config, pose2d_weights=args.checkpoint,
        device=args.device).inferencer
    set_pose_thr(pose_inferencer.visualizer, args.pose_thr)
    model = pose_inferencer.model
    settings = {}
    if args.max_persons is not None:
        settings['max_per_img'] = args.max_persons
    if args.precision == 'bf16':
        settings['precision'] = 'bf16'
    drawn_from = getattr(pose_inferencer.visualizer, 'pose_score_thr', None)
    if not (args.all_persons or drawn_from is None
            or not model.head.score_thr_is_exact):
        # exact for this model: the persons drawn, decoded alone
        settings['score_thr'] = drawn_from
    model.update_test_cfg(**settings)
    for batch in batches(frames, args.batch_size):
        # MMPoseInferencer runs one image at a time: its steps, batched by
        # input shape (padding an image further would change its persons)
        images = [frame for _, frame, _ in batch]
        data = [
            info for i, image in enumerate(images)
            for info in pose_inferencer.preprocess_single(image, i)
        ]
        preds = [None] * len(data)
        for group in same_shape_groups([info['inputs'].shape
                                        for info in data]):
            batch_preds = pose_inferencer.forward(
                pose_inferencer.collate_fn([data[i] for i in group]))
            for i, pred in zip(group, batch_preds):
                preds[i] = pred
        fps = batch[0][2]
        drawn = pose_inferencer.visualize(
            images,
            preds,
            return_vis=True,
            show=args.show,
            wait_time=1e-5 if fps else 0,
            kpt_thr=args.kpt_thr,
            draw_bbox=True,
            radius=RADIUS,
            thickness=THICKNESS)
        result = pose_inferencer.postprocess(preds, drawn)
        yield from zip((name for name, _, _ in batch),
                       (fps for _, _, fps in batch), result['visualization'],
                       result['predictions'])


def runtime_frames(args, frames: Iterator[Frame]) -> Iterator[tuple]:
    """The same outputs as :func:`pytorch_frames`, from the exported model
    in ONNX Runtime or OpenVINO."""
    runtime = build_runtime(args.onnx, args.backend, args.precision,
                            args.device)
    cfg = runtime_config(runtime, args.onnx, args.config)
    visualizer = VISUALIZERS.build(
        dict(cfg.visualizer, name=f'{args.backend}_demo_{id(runtime)}'))
    visualizer.set_dataset_meta(dataset_meta_from_config(cfg, 'train'))
    visualizer.radius, visualizer.line_width = RADIUS, THICKNESS
    set_pose_thr(visualizer, args.pose_thr)
    for batch in batches(frames, args.batch_size):
        predicted = runtime.predict([frame for _, frame, _ in batch],
                                    args.max_persons, len(batch))
        for (name, frame, fps), persons in zip(batch, predicted):
            instances = InstanceData(
                **persons, keypoints_visible=persons['keypoint_scores'])
            drawn = visualizer.add_datasample(
                name,
                mmcv.bgr2rgb(frame),
                PoseDataSample(pred_instances=instances),
                draw_gt=False,
                draw_bbox=True,
                show=args.show,
                wait_time=1e-5 if fps else 0,
                kpt_thr=args.kpt_thr)
            yield name, fps, drawn, split_instances(instances)


def write_json(predictions, path: str) -> None:
    with atomic_output(path) as partial:
        mmengine.dump(predictions, partial, indent='  ')


def run(args, images: Optional[List[str]],
        unreadable: List[str]) -> Iterator[dict]:
    """Read, predict, draw and write every frame of ``args.input``; each
    output file appears only once complete (a video and its JSON at the
    end), and no two inputs write one file. Unreadable images are skipped
    and added to ``unreadable``."""
    predict = pytorch_frames if args.backend == 'pytorch' else \
        runtime_frames
    vis_dir, pred_dir = output_dirs(args.out_dir)
    json_names = prediction_names(images or [])
    with contextlib.ExitStack() as video_output:
        writer, video_name, video_preds = None, None, []
        for name, fps, drawn, preds in predict(
                args, read_frames(args.input, images, unreadable)):
            if not fps:
                with atomic_output(osp.join(vis_dir, name)) as partial:
                    mmcv.imwrite(mmcv.rgb2bgr(drawn), partial)
                write_json(preds, osp.join(pred_dir, json_names[name]))
            else:  # a video or a camera: one video and one JSON at the end
                if writer is None:
                    video_name = name
                    writer = cv2.VideoWriter(
                        video_output.enter_context(
                            atomic_output(osp.join(vis_dir, name))),
                        cv2.VideoWriter_fourcc(*'mp4v'), fps,
                        (drawn.shape[1], drawn.shape[0]))
                writer.write(mmcv.rgb2bgr(drawn))
                video_preds.append(
                    dict(frame_id=len(video_preds), instances=preds))
            yield dict(visualization=[drawn], predictions=[preds])
        if writer is not None:
            writer.release()
    if video_name is not None:
        write_json(video_preds,
                   osp.join(pred_dir,
                            osp.splitext(video_name)[0] + '.json'))


def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    images = image_inputs(args.input, args.out_dir)
    progress = ProgressBar(count_frames(args.input, images) or 0)
    results, unreadable = [], []
    for result in run(args, images, unreadable):
        results.append(result)
        progress.update()
    vis_dir, pred_dir = output_dirs(args.out_dir)
    print(f'\n{len(results)} frame(s) done; drawn in {vis_dir}, '
          f'predictions in {pred_dir}')
    if unreadable:
        print(
            f'error: {len(unreadable)} image(s) could not be read and were '
            'skipped: ' + ', '.join(unreadable),
            file=sys.stderr)
        sys.exit(1)
    return results


if __name__ == '__main__':
    main()
