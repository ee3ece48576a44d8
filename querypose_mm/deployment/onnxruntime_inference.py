"""Run an exported QueryPose ONNX model with ONNX Runtime.

Needs numpy, OpenCV and onnxruntime only (no torch, no OpenMMLab), so this
file can be copied next to the ``.onnx`` file on a deployment target. The
settings come from the model's metadata, written by
:func:`~querypose_mm.deployment.export_onnx`.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

METADATA_KEY = 'querypose'


class QueryPoseOnnxRuntime:
    """Pre-processing, ONNX Runtime session and post-processing of an
    exported QueryPose model.

    Pre-processing repeats the test pipeline: resize keeping the aspect
    ratio (short side ``short_side``, long side at most ``max_size``,
    bilinear), BGR -> RGB, normalise, pad at the bottom and right (to a
    multiple of ``pad_size_divisor``, or to the fixed input shape of a
    static export). Post-processing keeps the ``max_per_img`` persons with
    the highest pose score ``sigmoid(cls) * mean_k(1 - σ_k)``, no NMS, and
    maps them back to the original image.

    Args:
        onnx_file (str): An exported model.
        providers (Sequence[str], optional): ONNX Runtime execution
            providers. Defaults to ``['CPUExecutionProvider']``.

    Example:
        >>> model = QueryPoseOnnxRuntime('querypose.onnx')
        >>> persons = model(cv2.imread('demo.jpg'))  # BGR, as cv2 reads it
        >>> persons['keypoints'].shape  # (n, K, 2), original pixels
    """

    def __init__(self,
                 onnx_file: str,
                 providers: Optional[Sequence[str]] = None) -> None:
        import onnxruntime

        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX model {onnx_file!r} does not exist')
        self.session = onnxruntime.InferenceSession(
            onnx_file, providers=list(providers or ['CPUExecutionProvider']))
        metadata = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise ValueError(
                f'{onnx_file} has no {METADATA_KEY!r} metadata: export it '
                'with tools/deployment/pytorch2onnx.py')
        self.metadata = metadata
        self.settings = json.loads(metadata[METADATA_KEY])
        self.mean = np.asarray(self.settings['mean'], np.float32)
        self.std = np.asarray(self.settings['std'], np.float32)
        self.max_per_img = self.settings['max_per_img']

    def resize_shape(self, height: int, width: int) -> Tuple[int, int]:
        """The (h, w) an (h, w) image is resized to: the test pipeline's
        ``RandomShortSideResize``, shrunk further to fit a static input."""
        ratio = self.settings['short_side'] / min(height, width)
        max_size = self.settings['max_size']
        if max_size is not None and max(height, width) * ratio > max_size:
            ratio = max_size / max(height, width)
        input_shape = self.settings.get('input_shape')
        if input_shape is not None:
            ratio = min(ratio, input_shape[0] / height, input_shape[1] / width)
        return (max(1, int(round(height * ratio))),
                max(1, int(round(width * ratio))))

    def preprocess(
            self,
            image: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A BGR uint8 image (h, w, 3) -> the model inputs and the scale.

        Returns:
            tuple[np.ndarray, np.ndarray, np.ndarray]: ``inputs``
            (1, 3, H, W) float32, ``img_whwh`` (1, 4) float32 (size before
            padding) and the (x, y) resize scale (2,).
        """
        if not (isinstance(image, np.ndarray) and image.ndim == 3
                and image.shape[2] == 3 and image.size > 0):
            shape = getattr(image, 'shape', None)
            raise ValueError('expected a BGR image of shape (h, w, 3), got '
                             f'{type(image).__name__} of shape {shape}')
        height, width = image.shape[:2]
        new_h, new_w = self.resize_shape(height, width)
        resized = cv2.resize(
            image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if self.settings['bgr_to_rgb']:
            resized = resized[..., ::-1]
        normalised = (resized.astype(np.float32) - self.mean) / self.std
        input_shape = self.settings.get('input_shape')
        if input_shape is None:
            divisor = self.settings['pad_size_divisor']
            input_shape = (-(-new_h // divisor) * divisor,
                           -(-new_w // divisor) * divisor)
        inputs = np.full((1, 3, *input_shape),
                         self.settings['pad_value'],
                         dtype=np.float32)
        inputs[0, :, :new_h, :new_w] = normalised.transpose(2, 0, 1)
        img_whwh = np.array([[new_w, new_h, new_w, new_h]], np.float32)
        scale = np.array([new_w / width, new_h / height])
        return inputs, img_whwh, scale

    def forward(self, inputs: np.ndarray,
                img_whwh: np.ndarray) -> Dict[str, np.ndarray]:
        """The raw outputs of every query: ``cls_logits`` (B, N),
        ``boxes`` (B, N, 4), ``keypoints`` (B, N, K, 2) in input pixels,
        ``sigma_logits`` (B, N, K, 2)."""
        names = [output.name for output in self.session.get_outputs()]
        outputs = self.session.run(names, {
            'inputs': inputs,
            'img_whwh': img_whwh
        })
        return dict(zip(names, outputs))

    def postprocess(
            self,
            outputs: Dict[str, np.ndarray],
            scale: np.ndarray,
            max_per_img: Optional[int] = None) -> Dict[str, np.ndarray]:
        """The best persons of the first image, in original pixels.

        Returns:
            dict[str, np.ndarray]: ``keypoints`` (n, K, 2),
            ``keypoint_scores`` (n, K), ``bboxes`` (n, 4) xyxy and
            ``bbox_scores`` (n,), the pose score, in descending order.
        """
        max_per_img = min(max_per_img or self.max_per_img,
                          outputs['cls_logits'].shape[1])
        cls_prob = 1 / (1 + np.exp(-outputs['cls_logits'][0]))
        keypoint_scores = (1 - 1 /
                           (1 + np.exp(-outputs['sigma_logits'][0]))).mean(-1)
        pose_scores = cls_prob * keypoint_scores.mean(-1)
        # stable, so ties keep the query order, as torch.topk does on CPU
        order = np.argsort(-pose_scores, kind='stable')[:max_per_img]
        keypoints = outputs['keypoints'][0, order] / scale
        keypoints = keypoints + self.settings['keypoint_offset']
        bboxes = outputs['boxes'][0, order] / np.tile(scale, 2)
        return dict(
            keypoints=keypoints.astype(np.float32),
            keypoint_scores=keypoint_scores[order].astype(np.float32),
            bboxes=bboxes.astype(np.float32),
            bbox_scores=pose_scores[order].astype(np.float32))

    def __call__(self,
                 image: np.ndarray,
                 max_per_img: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Predict the persons of a BGR image (see :meth:`postprocess`)."""
        inputs, img_whwh, scale = self.preprocess(image)
        return self.postprocess(
            self.forward(inputs, img_whwh), scale, max_per_img)
