"""Run an exported QueryPose ONNX model with ONNX Runtime or OpenVINO.

Needs numpy, OpenCV and the runtime only (no torch, no OpenMMLab), so this
file can be copied next to the ``.onnx`` file on a deployment target; the
settings come from the file's metadata. The resize rule and the padding
are defined here, once: the test pipeline's ``RandomShortSideResize`` and
the export import them.

Example:
    >>> model = QueryPoseOnnxRuntime('querypose.onnx')  # or QueryPoseOpenVINO
    >>> persons = model(cv2.imread('demo.jpg'))  # BGR, as cv2 reads it
    >>> persons['keypoints'].shape  # (n, K, 2), original pixels
    >>> batch = model([frame0, frame1], batch_size=2)  # a list of dicts
"""
import json
import os
import os.path as osp
import warnings
from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

METADATA_KEY = 'querypose'
CONFIG_KEY = 'querypose_config'
INPUT_NAMES = ('inputs', 'img_whwh')
# also stored in the metadata, which tells a file of another layout
OUTPUT_NAMES = ('keypoints', 'keypoint_scores', 'bboxes', 'bbox_scores')
# querypose_mm.models.utils.PRECISIONS, repeated: this file imports no torch
PRECISIONS = ('fp32', 'bf16')
# OpenVINO's INFERENCE_PRECISION_HINT values
_OPENVINO_PRECISIONS = dict(fp32='f32', bf16='bf16')

Persons = Dict[str, np.ndarray]


def checked_runtime_precision(precision: str) -> str:
    """``precision`` as one of :data:`PRECISIONS`, as
    ``querypose_mm.models.utils.checked_precision`` reads it: ``'f32'``
    (the former spelling) as ``'fp32'``, with a DeprecationWarning."""
    if precision == 'f32':
        warnings.warn("precision='f32' is now called 'fp32'",
                      DeprecationWarning, 3)
        return 'fp32'
    if precision not in PRECISIONS:
        raise ValueError(
            f'precision must be one of {PRECISIONS}, got {precision!r}')
    return precision


def short_side_resize_shape(
        height: int,
        width: int,
        short_side: int,
        max_size: Optional[int],
        fit_in: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """The (h, w) an (h, w) image is resized to, keeping its aspect ratio:
    short side ``short_side`` unless the long side would then exceed
    ``max_size``, which it then becomes (Detectron2's
    ``ResizeShortestEdge``); shrunk further to fit ``fit_in`` (H, W), a
    static input, if given."""
    ratio = short_side / min(height, width)
    if max_size is not None and max(height, width) * ratio > max_size:
        ratio = max_size / max(height, width)
    if fit_in is not None:
        ratio = min(ratio, fit_in[0] / height, fit_in[1] / width)
    return tuple(max(1, int(round(side * ratio))) for side in (height, width))


def padded_size(side: int, divisor: int) -> int:
    """``side`` rounded up to a multiple of ``divisor``, as mmengine's data
    pre-processor pads."""
    return -(-side // divisor) * divisor


def onednn_isa_cap_below_cpu() -> Optional[str]:
    """The ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) cap when it is
    below AVX-512 on a CPU that has AVX-512, else None: OpenVINO 2026.4's
    CPU plugin crashes at its first inference under such a cap (measured:
    every cap below AVX512_CORE on an AVX512-BF16 CPU)."""
    cap = os.environ.get('ONEDNN_MAX_CPU_ISA') or os.environ.get(
        'DNNL_MAX_CPU_ISA')
    if not cap or cap.upper().startswith(('AVX512', 'AMX', 'ALL')):
        return None
    try:
        with open('/proc/cpuinfo') as f:
            has_avx512 = ' avx512f' in f.read()
    except OSError:
        return None
    return cap if has_avx512 else None


def same_shape_groups(shapes: Sequence[tuple]) -> List[List[int]]:
    """The indices of equal shapes, in order of first appearance."""
    groups: Dict[tuple, List[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(i)
    return list(groups.values())


class QueryPoseRuntime(ABC):
    """Pre-processing, batching and post-processing of an exported QueryPose
    model; the subclasses run the graph.

    Pre-processing repeats the test pipeline: resize
    (:func:`short_side_resize_shape`, bilinear), BGR -> RGB, normalise, pad
    at the bottom and right (to a multiple of ``pad_size_divisor``, or to
    the fixed input shape of a static export). The graph keeps the top
    ``max_per_img`` persons by pose score, ``sigmoid(cls) * mean_k(1 -
    σ_k)`` (no NMS); post-processing maps them back to the original image.

    A list of images runs in batches of images whose padded inputs have the
    same shape (all of them for a static export), so each image gets the
    persons it gets alone: padding an image further would change the
    features near its bottom and right edges.

    Args:
        onnx_file (str): An exported model.

    Attributes:
        metadata (dict[str, str]): The file's metadata.
        settings (dict): The runtime's settings, stored by the export.
    """

    def __init__(self, onnx_file: str) -> None:
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX model {onnx_file!r} does not exist')
        if osp.getsize(onnx_file) == 0:
            raise ValueError(f'ONNX model {onnx_file} is empty (0 bytes), '
                             'e.g. a copy that was interrupted; export it '
                             'again with tools/deployment/pytorch2onnx.py')
        self.metadata = self._load(onnx_file)
        if METADATA_KEY not in self.metadata:
            raise ValueError(
                f'{onnx_file} has no {METADATA_KEY!r} metadata: export it '
                'with tools/deployment/pytorch2onnx.py')
        self.settings = json.loads(self.metadata[METADATA_KEY])
        if self.settings.get('outputs') != list(OUTPUT_NAMES):
            raise ValueError(
                f'{onnx_file} was exported by an earlier version, whose '
                'graph outputs the raw values of every query; this runtime '
                'reads the ranked persons of the current graph: export it '
                'again with tools/deployment/pytorch2onnx.py')
        self.mean = np.asarray(self.settings['mean'], np.float32)
        self.std = np.asarray(self.settings['std'], np.float32)
        self.max_per_img = self.settings['max_per_img']

    @abstractmethod
    def _load(self, onnx_file: str) -> Dict[str, str]:
        """Load the graph; returns the file's metadata."""

    @staticmethod
    def _unreadable(onnx_file: str, backend: str,
                    error: Exception) -> ValueError:
        """The error for a file the runtime cannot parse, naming it."""
        reason = (str(error).strip().splitlines()
                  or [type(error).__name__])[0][:200]
        return ValueError(
            f'ONNX model {onnx_file} ({osp.getsize(onnx_file)} bytes) '
            f'cannot be read by {backend} ({reason}): a truncated or '
            'damaged file, or no ONNX model; export it again with '
            'tools/deployment/pytorch2onnx.py')

    @abstractmethod
    def _run(self, inputs: np.ndarray,
             img_whwh: np.ndarray) -> Sequence[np.ndarray]:
        """The graph's outputs, in :data:`OUTPUT_NAMES` order."""

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
        input_shape = self.settings.get('input_shape')
        # the test pipeline's resize, shrunk further to fit a static input
        new_h, new_w = short_side_resize_shape(height, width,
                                               self.settings['short_side'],
                                               self.settings['max_size'],
                                               input_shape)
        resized = cv2.resize(
            image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if self.settings['bgr_to_rgb']:
            resized = resized[..., ::-1]
        normalised = (resized.astype(np.float32) - self.mean) / self.std
        if input_shape is None:
            input_shape = [
                padded_size(side, self.settings['pad_size_divisor'])
                for side in (new_h, new_w)
            ]
        inputs = np.full((1, 3, *input_shape),
                         self.settings['pad_value'],
                         dtype=np.float32)
        inputs[0, :, :new_h, :new_w] = normalised.transpose(2, 0, 1)
        img_whwh = np.array([[new_w, new_h, new_w, new_h]], np.float32)
        scale = np.array([new_w / width, new_h / height])
        return inputs, img_whwh, scale

    def forward(self, inputs: np.ndarray,
                img_whwh: np.ndarray) -> Dict[str, np.ndarray]:
        """The graph's top ``k`` persons of each image, best first, in input
        pixels: ``keypoints`` (B, k, K, 2), ``keypoint_scores`` (B, k, K),
        ``bboxes`` (B, k, 4) xyxy and ``bbox_scores`` (B, k), the pose
        score."""
        return dict(zip(OUTPUT_NAMES, self._run(inputs, img_whwh)))

    def persons_kept(self, max_per_img: Optional[int] = None) -> int:
        """The persons kept per image for ``max_per_img`` (default: the
        exported count): at most the query count, as the PyTorch head, and
        a ValueError if more than the graph keeps."""
        if max_per_img is None:
            return self.max_per_img
        if not (isinstance(max_per_img,
                           (int, np.integer)) and max_per_img >= 1):
            raise ValueError('max_per_img must be a positive integer, got '
                             f'{max_per_img!r}')
        count = min(max_per_img, self.settings['num_queries'])
        if count > self.max_per_img:
            raise ValueError(
                f'max_per_img={max_per_img}: the exported graph keeps the '
                f'top {self.max_per_img} persons; export again with '
                f'--cfg-options model.test_cfg.max_per_img={count}')
        return count

    def postprocess(self,
                    outputs: Dict[str, np.ndarray],
                    scale: np.ndarray,
                    max_per_img: Optional[int] = None,
                    index: int = 0) -> Persons:
        """The best persons of image ``index`` of the batch, in original
        pixels.

        Returns:
            dict[str, np.ndarray]: ``keypoints`` (n, K, 2),
            ``keypoint_scores`` (n, K), ``bboxes`` (n, 4) xyxy and
            ``bbox_scores`` (n,), the pose score, in descending order.
        """
        count = self.persons_kept(max_per_img)
        keypoints, keypoint_scores, bboxes, bbox_scores = (
            outputs[name][index, :count] for name in OUTPUT_NAMES)
        keypoints = keypoints / scale + self.settings['keypoint_offset']
        return dict(
            keypoints=keypoints.astype(np.float32),
            keypoint_scores=keypoint_scores.astype(np.float32),
            bboxes=(bboxes / np.tile(scale, 2)).astype(np.float32),
            bbox_scores=bbox_scores.astype(np.float32))

    def predict(self,
                images: Sequence[np.ndarray],
                max_per_img: Optional[int] = None,
                batch_size: Optional[int] = None) -> List[Persons]:
        """The persons of each BGR image, in order (see
        :meth:`postprocess`).

        Args:
            images (Sequence[np.ndarray]): BGR uint8 images (h, w, 3).
            max_per_img (int, optional): Persons kept per image.
            batch_size (int, optional): Images per run of the graph (whose
                batch axis is dynamic). Defaults to all the images of one
                input shape.
        """
        if batch_size is not None and batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.persons_kept(max_per_img)  # refused before anything runs
        limit = batch_size or max(len(images), 1)
        prepared = [self.preprocess(image) for image in images]
        persons: List[Optional[Persons]] = [None] * len(images)
        for indices in same_shape_groups([p[0].shape for p in prepared]):
            for start in range(0, len(indices), limit):
                chunk = indices[start:start + limit]
                outputs = self.forward(
                    np.concatenate([prepared[i][0] for i in chunk]),
                    np.concatenate([prepared[i][1] for i in chunk]))
                for row, i in enumerate(chunk):
                    persons[i] = self.postprocess(outputs, prepared[i][2],
                                                  max_per_img, row)
        return persons

    def __call__(
            self,
            images: Union[np.ndarray, Sequence[np.ndarray]],
            max_per_img: Optional[int] = None,
            batch_size: Optional[int] = None) -> Union[Persons, List[Persons]]:
        """Predict the persons of a BGR image (a dict, see
        :meth:`postprocess`), or of a list of them (a list of dicts, see
        :meth:`predict`)."""
        if isinstance(images, np.ndarray):
            return self.predict([images], max_per_img)[0]
        return self.predict(images, max_per_img, batch_size)


class QueryPoseOnnxRuntime(QueryPoseRuntime):
    """An exported model in ONNX Runtime (see :class:`QueryPoseRuntime`).

    Args:
        onnx_file (str): An exported model.
        providers (Sequence[str], optional): ONNX Runtime execution
            providers. Defaults to ``['CPUExecutionProvider']``.
    """

    def __init__(self,
                 onnx_file: str,
                 providers: Optional[Sequence[str]] = None) -> None:
        self.providers = list(providers or ['CPUExecutionProvider'])
        super().__init__(onnx_file)

    def _load(self, onnx_file: str) -> Dict[str, str]:
        import onnxruntime
        try:
            self.session = onnxruntime.InferenceSession(
                onnx_file, providers=self.providers)
        except Exception as error:  # the file's: onnxruntime's own types
            raise self._unreadable(onnx_file, 'ONNX Runtime', error) from error
        return self.session.get_modelmeta().custom_metadata_map

    def _run(self, inputs: np.ndarray,
             img_whwh: np.ndarray) -> Sequence[np.ndarray]:
        return self.session.run(
            list(OUTPUT_NAMES), dict(zip(INPUT_NAMES, (inputs, img_whwh))))


class QueryPoseOpenVINO(QueryPoseRuntime):
    """An exported model in OpenVINO (see :class:`QueryPoseRuntime`).

    OpenVINO reads the ONNX file as it is (RoiAlign included). Its CPU
    plugin picks oneDNN kernels for the machine: AMX or AVX512-BF16 with
    ``precision='bf16'``.

    Args:
        onnx_file (str): An exported model.
        precision (str): ``'fp32'`` or ``'bf16'`` (``'f32'``, deprecated,
            is read as ``'fp32'``), the CPU plugin's
            ``INFERENCE_PRECISION_HINT``. Given always: on CPUs with bf16
            OpenVINO would otherwise choose bf16 by itself.
        device (str): An OpenVINO device. Defaults to ``'CPU'``.
        num_threads (int, optional): ``INFERENCE_NUM_THREADS``; defaults to
            OpenVINO's choice (every core).
    """

    def __init__(self,
                 onnx_file: str,
                 precision: str = 'fp32',
                 device: str = 'CPU',
                 num_threads: Optional[int] = None) -> None:
        self.precision = checked_runtime_precision(precision)
        self.device = device
        self.num_threads = num_threads
        super().__init__(onnx_file)

    def _load(self, onnx_file: str) -> Dict[str, str]:
        import openvino

        cap = onednn_isa_cap_below_cpu()
        if cap is not None:
            raise RuntimeError(
                f'ONEDNN_MAX_CPU_ISA={cap} caps oneDNN below this CPU\'s '
                'AVX-512, under which OpenVINO\'s CPU plugin crashes; unset '
                'it for OpenVINO (the plugin picks its kernels itself)')
        core = openvino.Core()
        if self.device not in core.available_devices:
            raise ValueError(f'OpenVINO device {self.device!r} is not '
                             f'available here: {core.available_devices}')
        if self.precision == 'bf16' and 'BF16' not in core.get_property(
                self.device, 'OPTIMIZATION_CAPABILITIES'):
            raise ValueError(
                f'OpenVINO {self.device} has no bf16 support on this '
                "machine (no AMX or AVX512-BF16): use precision='fp32'")
        try:
            model = core.read_model(onnx_file)
        except Exception as error:  # the file's: OpenVINO's own types
            raise self._unreadable(onnx_file, 'OpenVINO', error) from error
        metadata = {
            key: model.get_rt_info(['framework', key]).astype(str)
            for key in (METADATA_KEY, CONFIG_KEY)
            if model.has_rt_info(['framework', key])
        }
        config = dict(
            INFERENCE_PRECISION_HINT=_OPENVINO_PRECISIONS[self.precision])
        if self.num_threads:
            config['INFERENCE_NUM_THREADS'] = self.num_threads
        self.compiled = core.compile_model(model, self.device, config)
        self.request = self.compiled.create_infer_request()
        return metadata

    def _run(self, inputs: np.ndarray,
             img_whwh: np.ndarray) -> Sequence[np.ndarray]:
        results = self.request.infer(
            dict(zip(INPUT_NAMES, (inputs, img_whwh))))
        return [results[name] for name in OUTPUT_NAMES]
