"""Export a QueryPose checkpoint to ONNX for ONNX Runtime and OpenVINO.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT \
        --out querypose.onnx [--input-shape H W] [--dynamic] \
        [--cfg-options k=v ...]

The graph holds backbone, neck and every head stage, scores the queries
and returns the top ``model.test_cfg.max_per_img`` persons of each image
(keypoints, keypoint scores, boxes, pose scores), ranked as the PyTorch
model ranks them; RoIAlign is the standard ONNX ``RoiAlign`` (opset 16,
half_pixel), so no custom-op library is needed. Pre-processing and the
way back to the original image are ``querypose_mm.deployment``'s
``QueryPoseOnnxRuntime`` and ``QueryPoseOpenVINO``, with the settings
stored in the model's metadata; ``demo/querypose_demo.py --backend
onnxruntime|openvino --onnx FILE`` uses them. The batch size is always dynamic.
``--dynamic`` lets height and width vary too (the runtime then pads each
image to a multiple of 32, as the PyTorch model does); otherwise every image
is resized to fit ``--input-shape`` (default: the config's test short side x
max size) and padded to it. After the export the file is run in ONNX Runtime
and compared with PyTorch (a batch of two at the traced shape and, with
``--dynamic``, one image at a second shape); a model whose graph only holds
at the traced shape (Swin's window padding) is refused with ``--dynamic`` and
nothing is written. Before the model is loaded, ``--out`` is checked (a file
name in a writable folder, not the checkpoint) and so is the config's
``model.test_cfg``: ``score_thr`` and ``precision='bf16'`` are not in the
graph, and are refused by name (a runtime keeps at most the exported
``max_per_img`` persons: export with the largest count you will ask for).
"""
import argparse
import os.path as osp
import time

from mmengine.config import Config, DictAction

import querypose_mm  # noqa: F401  (registers the modules)
from mmpose.apis import init_model
from querypose_mm.deployment import check_graph_test_cfg, export_onnx
from querypose_mm.engine.cli import positive_int
from querypose_mm.utils import check_not_input, check_output_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='QueryPose config')
    parser.add_argument('checkpoint', help='.pth weights')
    parser.add_argument('--out', required=True, help='.onnx file to write')
    parser.add_argument(
        '--input-shape',
        type=positive_int,
        nargs=2,
        metavar=('H', 'W'),
        help='traced (and, without --dynamic, fixed) input size')
    parser.add_argument(
        '--dynamic',
        action='store_true',
        help='dynamic height and width (the batch size always is)')
    parser.add_argument(
        '--skip-verify',
        action='store_true',
        help='do not compare ONNX Runtime with PyTorch after the export')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_output_file(args.out, '--out')
    for path, what in ((args.config, 'config'), (args.checkpoint,
                                                 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist')
        check_not_input(args.out, '--out', path, what)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    check_graph_test_cfg(cfg.model.get('test_cfg') or {})
    model = init_model(cfg, args.checkpoint, device='cpu')
    start = time.perf_counter()
    export_onnx(
        model,
        model.cfg,
        args.out,
        input_shape=args.input_shape,
        dynamic=args.dynamic,
        verify=not args.skip_verify)
    print(f'exported {args.out} in {time.perf_counter() - start:.1f} s '
          f'({"dynamic" if args.dynamic else "static"} input)')


if __name__ == '__main__':
    main()
