"""Export a QueryPose model to ONNX for plain ONNX Runtime.

The graph is backbone + neck + the head's ``tensor`` mode on a normalised,
padded image and its unpadded size: every stage, then the pose scores and
the top ``max_per_img`` persons of each image, as the PyTorch model ranks
them (:func:`top_pose_tensors`). Pre-processing (resize, normalise, pad)
and the way back to the original image are the runtime's
(:class:`~querypose_mm.deployment.QueryPoseOnnxRuntime`), configured by the
JSON that :func:`export_onnx` stores in the model's metadata.

RoIAlign becomes the standard ONNX ``RoiAlign`` (opset 16,
``coordinate_transformation_mode='half_pixel'``, which is mmcv's
``aligned=True``) through torchvision's ``roi_align``, so no custom-op
library is needed. The TorchScript exporter is used (``dynamo=False``): the
torch.export-based one cannot trace mmcv's compiled ops.
"""
import copy
import json
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.ops import RoIAlign
from mmengine.config import Config
from torch import Tensor

from ..models.heads.querypose_head import QueryPoseHead
from ..models.pose_estimators import check_test_cfg
from ..models.task_modules import persons_per_image
from ..utils.files import atomic_output
from .runtimes import (CONFIG_KEY, INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES,
                       padded_size)
from .verification import verify_export

OPSET_VERSION = 16  # the first with RoiAlign's half_pixel mode


class AllLevelsRoIExtractor(nn.Module):
    """mmdet's ``SingleRoIExtractor`` as a static graph.

    mmdet gathers the RoIs of each FPN level and skips empty levels, which a
    trace would freeze to the levels used by the example input. Here every
    level pools every RoI and each RoI keeps its own level's result
    (selected, not summed, so the values are mmdet's exactly); the extra
    RoIAligns cost little next to the keypoint decoders.

    Args:
        extractor (nn.Module): A built mmdet ``SingleRoIExtractor``.
    """

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """Pool (n, 5) RoIs from the levels (B, C, H_l, W_l) into
        (n, C, S, S)."""
        layers = self.extractor.roi_layers
        roi_feats = layers[0](feats[0], rois)
        if len(feats) == 1:
            return roi_feats
        target_levels = self.extractor.map_roi_levels(rois, len(feats))
        for level in range(1, len(feats)):
            pooled = layers[level](feats[level], rois)
            roi_feats = torch.where((target_levels == level)[:, None, None,
                                                             None], pooled,
                                    roi_feats)
        return roi_feats


class QueryPoseOnnxModel(nn.Module):
    """What the ONNX graph computes: the top ``max_per_img`` persons of
    each image (the head's ``tensor`` mode).

    The model is copied, so the one given is left as it was.

    Args:
        model (nn.Module): A built ``BottomupPoseEstimator`` with a
            :class:`QueryPoseHead`, weights loaded; its ``test_cfg`` is
            checked (:func:`check_graph_test_cfg`).

    Attributes:
        max_per_img (int): The persons kept per image, k
            (:func:`persons_per_image`).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        check_exportable(model)
        check_graph_test_cfg(model.test_cfg)
        self.max_per_img = persons_per_image(model.test_cfg,
                                             model.head.num_queries)
        model = copy.deepcopy(model).cpu().eval()
        for module in model.modules():
            if isinstance(module, RoIAlign):
                module.use_torchvision = True
        head = model.head
        head.box_roi_extractor = AllLevelsRoIExtractor(head.box_roi_extractor)
        head.pose_roi_extractor = AllLevelsRoIExtractor(
            head.pose_roi_extractor)
        self.backbone = model.backbone
        self.neck = model.neck if model.with_neck else None
        self.head = head
        # torch.onnx.export restores the mode it found, recursively
        self.eval()

    def forward(
        self,
        inputs: Tensor,
        img_whwh: Tensor,
        max_per_img: Optional[int] = None
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run the model.

        Args:
            inputs (Tensor): Normalised RGB images padded at the bottom and
                right, (B, 3, H, W).
            img_whwh (Tensor): (w, h, w, h) of each image before padding,
                float, (B, 4).
            max_per_img (int, optional): Persons kept per image, k.
                Defaults to :attr:`max_per_img`.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: The best persons of each
            image, in :data:`OUTPUT_NAMES` order: keypoints (B, k, K, 2),
            keypoint scores (B, k, K), boxes (B, k, 4) xyxy (both in input
            pixels) and pose scores (B, k), best first.
        """
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return self.head(
            feats, img_whwh,
            self.max_per_img if max_per_img is None else max_per_img)


def check_exportable(model: nn.Module) -> None:
    """Fail clearly on a model the export does not support."""
    head = getattr(model, 'head', None)
    if not isinstance(head, QueryPoseHead):
        raise ValueError(
            'only QueryPose models (BottomupPoseEstimator with a '
            f'QueryPoseHead) can be exported by this tool, got a '
            f'{type(model).__name__} with a {type(head).__name__} head; '
            'export other mmpose models with mmdeploy')
    for name in ('box_roi_extractor', 'pose_roi_extractor'):
        for layer in getattr(head, name).roi_layers:
            if not isinstance(layer, RoIAlign):
                raise ValueError(
                    f'head.{name}.roi_layer is {type(layer).__name__}; the '
                    'ONNX export supports mmcv RoIAlign only')
            if layer.pool_mode != 'avg' or not layer.aligned:
                raise ValueError(
                    f'head.{name}.roi_layer has pool_mode='
                    f'{layer.pool_mode!r}, aligned={layer.aligned}; the ONNX '
                    "export supports pool_mode='avg' with aligned=True "
                    "(ONNX RoiAlign's half_pixel mode)")


def _test_resize(cfg: Config) -> dict:
    """The test pipeline's resize, which the runtime repeats."""
    pipeline = cfg.test_dataloader.dataset.pipeline
    resizes = [t for t in pipeline if t['type'] == 'RandomShortSideResize']
    if len(resizes) != 1 or len(pipeline) != 3:
        names = [t['type'] for t in pipeline]
        raise ValueError(
            'the ONNX runtime repeats a test pipeline of LoadImage, '
            'RandomShortSideResize and PackPoseInputs; this config\'s '
            f'test_dataloader.dataset.pipeline is {names}')
    resize = resizes[0]
    scales = resize['scales']
    if not isinstance(scales, int):
        if len(scales) != 1:
            raise ValueError(
                'the test pipeline\'s RandomShortSideResize must have one '
                f'scale for the ONNX runtime, got scales={scales}')
        scales = scales[0]
    interpolation = resize.get('interpolation', 'bilinear')
    if interpolation != 'bilinear':
        raise ValueError('the ONNX runtime resizes bilinearly; the test '
                         f'pipeline uses interpolation={interpolation!r}')
    return dict(short_side=int(scales), max_size=resize.get('max_size', 1333))


def runtime_test_cfg(test_cfg: dict, owner: str = 'model.test_cfg') -> dict:
    """The ``test_cfg`` settings an exported model's runtime applies after
    the graph (which keeps the top ``max_per_img`` persons of the export):
    ``max_per_img`` (fewer persons, not more) and ``score_thr`` (kept where
    the pose score reaches it, exactly the persons PyTorch keeps). Fails,
    naming the setting, on a value QueryPose refuses and on ``precision``
    other than fp32: the graph is float32, and runs in bf16 only through
    OpenVINO's own precision.

    Returns:
        dict: The ``max_per_img`` and ``score_thr`` that are set.
    """
    check_test_cfg(test_cfg, owner)
    precision = test_cfg.get('precision', 'fp32')
    if precision != 'fp32':
        raise ValueError(
            f'{owner}.precision={precision!r} is PyTorch\'s inference mode '
            'and not in the exported float32 graph; leave it out (set it to '
            "'fp32') and run the file in bf16 with OpenVINO (--backend "
            'openvino --precision bf16)')
    return {
        key: test_cfg[key]
        for key in ('max_per_img', 'score_thr')
        if test_cfg.get(key) is not None
    }


def check_graph_test_cfg(test_cfg: dict) -> None:
    """Fail, before an export, on a ``test_cfg`` setting the ONNX file
    would not hold: ``precision`` other than fp32 (see
    :func:`runtime_test_cfg`) and ``score_thr`` (the graph keeps the top
    ``max_per_img``, whatever their score: ignoring it would return other
    persons than PyTorch)."""
    score_thr = runtime_test_cfg(test_cfg).get('score_thr')
    if score_thr is not None:
        raise ValueError(
            f'model.test_cfg.score_thr={score_thr} is not in the exported '
            'graph, which keeps the top max_per_img persons whatever their '
            'score; export without it (--cfg-options '
            'model.test_cfg.score_thr=None) and apply it at evaluation '
            '(tools/deployment/test_runtime.py --cfg-options '
            'model.test_cfg.score_thr=...) or when drawing (the demo\'s '
            '--pose-thr)')


def runtime_settings(cfg: Config, onnx_model: QueryPoseOnnxModel) -> dict:
    """The runtime's settings: the test pipeline's resize, the data
    pre-processor's normalisation and padding, the graph's outputs and the
    head's sizes and keypoint offset."""
    preprocessor = cfg.model.data_preprocessor
    head = onnx_model.head
    return dict(
        _test_resize(cfg),
        mean=list(map(float, preprocessor['mean'])),
        std=list(map(float, preprocessor['std'])),
        bgr_to_rgb=bool(preprocessor.get('bgr_to_rgb', False)),
        pad_size_divisor=int(preprocessor.get('pad_size_divisor', 1)),
        pad_value=float(preprocessor.get('pad_value', 0)),
        outputs=list(OUTPUT_NAMES),
        num_keypoints=head.num_keypoints,
        num_queries=head.num_queries,
        max_per_img=onnx_model.max_per_img,
        keypoint_offset=float(head.keypoint_offset))


def export_onnx(model: nn.Module,
                cfg: Config,
                out_file: str,
                input_shape: Optional[Tuple[int, int]] = None,
                dynamic: bool = False,
                verify: bool = True) -> str:
    """Export a QueryPose model, check the file with the ONNX checker and
    compare it with the PyTorch model (:func:`verify_export`).

    Args:
        model (nn.Module): A built ``BottomupPoseEstimator`` (weights
            loaded).
        cfg (Config): Its config (test pipeline, data pre-processor).
        out_file (str): The ``.onnx`` path; written to a temporary name
            first, so a failed export never replaces a good file.
        input_shape (tuple[int, int], optional): (H, W) of the traced input;
            with ``dynamic=False`` every image is resized and padded into
            it. Defaults to the padded test size of a landscape image.
        dynamic (bool): Whether the height and width of the input are
            dynamic; the batch size always is.
        verify (bool): Compare ONNX Runtime with PyTorch at the traced
            shape (a batch of two) and, if dynamic, at a second one of
            another aspect ratio; a mismatch raises ``ValueError`` and writes
            nothing.

    Returns:
        str: ``out_file``.
    """
    import onnx

    onnx_model = QueryPoseOnnxModel(model)
    settings = runtime_settings(cfg, onnx_model)
    divisor = settings['pad_size_divisor']
    if input_shape is None:
        input_shape = (settings['short_side'], settings['max_size'])
    height, width = (padded_size(int(side), divisor) for side in input_shape)
    if not dynamic and (height, width) != tuple(input_shape):
        warnings.warn(f'input shape {tuple(input_shape)} padded to '
                      f'{(height, width)}, a multiple of pad_size_divisor '
                      f'({divisor})')
    settings['input_shape'] = None if dynamic else [height, width]
    batch_axis = {0: 'batch'}
    input_axes = {0: 'batch', 2: 'height', 3: 'width'}
    dynamic_axes = dict(
        inputs=input_axes if dynamic else batch_axis,
        img_whwh=batch_axis,
        **dict.fromkeys(OUTPUT_NAMES, batch_axis))
    # a file that fails the checks is never written
    with atomic_output(out_file) as tmp_file:
        with warnings.catch_warnings():
            # the TorchScript exporter's deprecation note and the tracer's
            # notes on values taken from shapes, which verify_export checks
            warnings.simplefilter('ignore')
            torch.onnx.export(
                onnx_model, (torch.zeros(1, 3, height, width),
                             torch.tensor([[width, height, width, height]],
                                          dtype=torch.float32)),
                tmp_file,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                opset_version=OPSET_VERSION,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                dynamo=False)
        proto = onnx.load(tmp_file)
        for key, value in ((METADATA_KEY, json.dumps(settings)),
                           (CONFIG_KEY, cfg.pretty_text)):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp_file)
        if verify:
            shapes = [(height, width)]
            if dynamic:
                # another size and aspect ratio than the traced one
                shapes.append(
                    (max(1, round(height * 0.6 / divisor)) * divisor,
                     max(1, round(width * 0.45 / divisor)) * divisor))
            verify_export(onnx_model, tmp_file, shapes)
    return out_file
