"""Run an exported QueryPose ONNX model with ONNX Runtime or OpenVINO.

Needs numpy, OpenCV and the runtime only (no torch, no OpenMMLab), so this
file can be copied next to the ``.onnx`` file on a deployment target. The
settings come from the model's metadata, written by
:func:`~querypose_mm.deployment.export_onnx`.
"""
import json
import os
import os.path as osp
from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

METADATA_KEY = 'querypose'
CONFIG_KEY = 'querypose_config'
INPUT_NAMES = ('inputs', 'img_whwh')
OUTPUT_NAMES = ('cls_logits', 'boxes', 'keypoints', 'sigma_logits')
OPENVINO_PRECISIONS = ('f32', 'bf16')

Persons = Dict[str, np.ndarray]


def onednn_isa_cap_below_cpu() -> Optional[str]:
    """The ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) cap when it is
    below AVX-512 on a CPU that has AVX-512, else None.

    OpenVINO 2026.4's CPU plugin crashes (segmentation fault) at its first
    inference under such a cap (measured: every cap below AVX512_CORE on
    an AVX512-BF16 CPU), so :class:`QueryPoseOpenVINO` refuses it first.
    """
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

    Pre-processing repeats the test pipeline: resize keeping the aspect
    ratio (short side ``short_side``, long side at most ``max_size``,
    bilinear), BGR -> RGB, normalise, pad at the bottom and right (to a
    multiple of ``pad_size_divisor``, or to the fixed input shape of a
    static export). Post-processing keeps the ``max_per_img`` persons with
    the highest pose score ``sigmoid(cls) * mean_k(1 - σ_k)``, no NMS, and
    maps them back to the original image.

    A list of images runs in batches of images whose padded inputs have the
    same shape (all of them for a static export), so each image gets the
    persons it gets alone: padding an image further would change the
    features near its bottom and right edges.

    Args:
        onnx_file (str): An exported model.

    Attributes:
        metadata (dict[str, str]): The file's metadata.
        max_batch (int, optional): The graph's fixed batch size (1 for
            exports from before batches were dynamic), or None if any batch
            runs.
    """

    def __init__(self, onnx_file: str) -> None:
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX model {onnx_file!r} does not exist')
        if osp.getsize(onnx_file) == 0:
            raise ValueError(f'ONNX model {onnx_file} is empty (0 bytes), '
                             'e.g. a copy that was interrupted; export it '
                             'again with tools/deployment/pytorch2onnx.py')
        self.metadata, self.max_batch = self._load(onnx_file)
        if METADATA_KEY not in self.metadata:
            raise ValueError(
                f'{onnx_file} has no {METADATA_KEY!r} metadata: export it '
                'with tools/deployment/pytorch2onnx.py')
        self.settings = json.loads(self.metadata[METADATA_KEY])
        self.mean = np.asarray(self.settings['mean'], np.float32)
        self.std = np.asarray(self.settings['std'], np.float32)
        self.max_per_img = self.settings['max_per_img']

    @abstractmethod
    def _load(self, onnx_file: str) -> Tuple[Dict[str, str], Optional[int]]:
        """Load the graph; returns the file's metadata and the graph's
        fixed batch size (None if dynamic)."""

    @staticmethod
    def _unreadable(onnx_file: str, backend: str,
                    error: Exception) -> ValueError:
        """The error for a file the runtime cannot parse, naming it."""
        reason = str(error).strip().splitlines()[0][:200] if str(
            error).strip() else type(error).__name__
        return ValueError(
            f'ONNX model {onnx_file} ({osp.getsize(onnx_file)} bytes) '
            f'cannot be read by {backend} ({reason}): a truncated or '
            'damaged file, or no ONNX model; export it again with '
            'tools/deployment/pytorch2onnx.py')

    @abstractmethod
    def _run(self, inputs: np.ndarray,
             img_whwh: np.ndarray) -> Sequence[np.ndarray]:
        """The graph's outputs, in :data:`OUTPUT_NAMES` order."""

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
        return dict(zip(OUTPUT_NAMES, self._run(inputs, img_whwh)))

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
        max_per_img = min(
            self.max_per_img if max_per_img is None else max_per_img,
            outputs['cls_logits'].shape[1])
        cls_prob = 1 / (1 + np.exp(-outputs['cls_logits'][index]))
        keypoint_scores = (
            1 - 1 / (1 + np.exp(-outputs['sigma_logits'][index]))).mean(-1)
        pose_scores = cls_prob * keypoint_scores.mean(-1)
        # stable, so ties keep the query order, as torch.topk does on CPU
        order = np.argsort(-pose_scores, kind='stable')[:max_per_img]
        keypoints = outputs['keypoints'][index, order] / scale
        keypoints = keypoints + self.settings['keypoint_offset']
        bboxes = outputs['boxes'][index, order] / np.tile(scale, 2)
        return dict(
            keypoints=keypoints.astype(np.float32),
            keypoint_scores=keypoint_scores[order].astype(np.float32),
            bboxes=bboxes.astype(np.float32),
            bbox_scores=pose_scores[order].astype(np.float32))

    def predict(self,
                images: Sequence[np.ndarray],
                max_per_img: Optional[int] = None,
                batch_size: Optional[int] = None) -> List[Persons]:
        """The persons of each BGR image, in order (see
        :meth:`postprocess`).

        Args:
            images (Sequence[np.ndarray]): BGR uint8 images (h, w, 3).
            max_per_img (int, optional): Persons kept per image.
            batch_size (int, optional): Images per run of the graph; at most
                the graph's fixed batch size. Defaults to all the images of
                one input shape (or the fixed batch size).
        """
        if batch_size is not None and batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if max_per_img is not None and not (isinstance(max_per_img,
                                                       (int, np.integer))
                                            and max_per_img >= 1):
            raise ValueError('max_per_img must be a positive integer, got '
                             f'{max_per_img!r}')
        limit = min(
            filter(None, (batch_size, self.max_batch)),
            default=max(len(images), 1))
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

    Example:
        >>> model = QueryPoseOnnxRuntime('querypose.onnx')
        >>> persons = model(cv2.imread('demo.jpg'))  # BGR, as cv2 reads it
        >>> persons['keypoints'].shape  # (n, K, 2), original pixels
        >>> batch = model([frame0, frame1], batch_size=2)  # a list of dicts
    """

    def __init__(self,
                 onnx_file: str,
                 providers: Optional[Sequence[str]] = None) -> None:
        self.providers = list(providers or ['CPUExecutionProvider'])
        super().__init__(onnx_file)

    def _load(self, onnx_file: str) -> Tuple[Dict[str, str], Optional[int]]:
        import onnxruntime
        try:
            self.session = onnxruntime.InferenceSession(
                onnx_file, providers=self.providers)
        except Exception as error:  # the file's: onnxruntime's own types
            raise self._unreadable(onnx_file, 'ONNX Runtime', error) from error
        batch = self.session.get_inputs()[0].shape[0]
        return (self.session.get_modelmeta().custom_metadata_map,
                batch if isinstance(batch, int) else None)

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
        precision (str): ``'f32'`` or ``'bf16'``, the CPU plugin's
            ``INFERENCE_PRECISION_HINT``. Given always: on CPUs with bf16
            OpenVINO would otherwise choose bf16 by itself.
        device (str): An OpenVINO device. Defaults to ``'CPU'``.
        num_threads (int, optional): ``INFERENCE_NUM_THREADS``; defaults to
            OpenVINO's choice (every core).

    Example:
        >>> model = QueryPoseOpenVINO('querypose.onnx', precision='bf16')
        >>> persons = model(cv2.imread('demo.jpg'))
    """

    def __init__(self,
                 onnx_file: str,
                 precision: str = 'f32',
                 device: str = 'CPU',
                 num_threads: Optional[int] = None) -> None:
        if precision not in OPENVINO_PRECISIONS:
            raise ValueError(f'precision must be one of {OPENVINO_PRECISIONS}'
                             f', got {precision!r}')
        self.precision = precision
        self.device = device
        self.num_threads = num_threads
        super().__init__(onnx_file)

    def _load(self, onnx_file: str) -> Tuple[Dict[str, str], Optional[int]]:
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
                "machine (no AMX or AVX512-BF16): use precision='f32'")
        try:
            model = core.read_model(onnx_file)
        except Exception as error:  # the file's: OpenVINO's own types
            raise self._unreadable(onnx_file, 'OpenVINO', error) from error
        metadata = {
            key: model.get_rt_info(['framework', key]).astype(str)
            for key in (METADATA_KEY, CONFIG_KEY)
            if model.has_rt_info(['framework', key])
        }
        batch = model.inputs[0].get_partial_shape()[0]
        config = dict(INFERENCE_PRECISION_HINT=self.precision)
        if self.num_threads:
            config['INFERENCE_NUM_THREADS'] = self.num_threads
        self.compiled = core.compile_model(model, self.device, config)
        self.request = self.compiled.create_infer_request()
        return metadata, None if batch.is_dynamic else batch.get_length()

    def _run(self, inputs: np.ndarray,
             img_whwh: np.ndarray) -> Sequence[np.ndarray]:
        results = self.request.infer(
            dict(zip(INPUT_NAMES, (inputs, img_whwh))))
        by_name = {
            output.get_any_name(): value
            for output, value in results.items()
        }
        return [by_name[name] for name in OUTPUT_NAMES]


RUNTIME_BACKENDS = ('onnxruntime', 'openvino')


def check_config_fits(runtime: QueryPoseRuntime, model_cfg: dict,
                      source: str) -> None:
    """Fail if a config given beside an exported model describes another
    model: its keypoints would be drawn, or scored, as other joints.

    Args:
        runtime (QueryPoseRuntime): The exported model.
        model_cfg (dict): The config's ``model``.
        source (str): Where the config comes from, e.g. ``'--config F'``.
    """
    head = model_cfg.get('head') or {}
    for key in ('num_keypoints', 'num_queries'):
        exported, configured = runtime.settings.get(key), head.get(key)
        if None not in (exported, configured) and exported != configured:
            raise ValueError(
                f'{source} has model.head.{key}={configured}, the exported '
                f'model {exported}: give the config the model was exported '
                'with (or none: the one stored in the ONNX file is used)')


def build_runtime(onnx_file: str,
                  backend: str = 'onnxruntime',
                  precision: str = 'f32',
                  device: Optional[str] = None) -> QueryPoseRuntime:
    """The runtime of ``backend`` for an exported model.

    Args:
        onnx_file (str): An exported model.
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        precision (str): ``'f32'``, or ``'bf16'`` (OpenVINO only).
        device (str, optional): ``'cpu'`` or ``'cuda'`` (ONNX Runtime's
            CUDA provider, CPU as fallback); OpenVINO runs on its ``'CPU'``.
    """
    if backend not in RUNTIME_BACKENDS:
        raise ValueError(f'backend must be one of {RUNTIME_BACKENDS}, got '
                         f'{backend!r}')
    if backend == 'openvino':
        if device is not None and device.lower() != 'cpu':
            raise ValueError('the OpenVINO backend runs on the CPU here, got '
                             f'device {device!r}')
        return QueryPoseOpenVINO(onnx_file, precision)
    if precision != 'f32':
        raise ValueError(f'ONNX Runtime runs the file in f32; precision '
                         f'{precision!r} needs the OpenVINO backend')
    providers = ['CPUExecutionProvider']
    if device is not None and device.startswith('cuda'):
        providers.insert(0, 'CUDAExecutionProvider')
    return QueryPoseOnnxRuntime(onnx_file, providers)
