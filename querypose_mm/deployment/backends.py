"""The exported model's runtime for a tool's ``--backend`` and
``--precision``, and the check of a config given beside the ONNX file."""
from typing import Optional

from mmengine.config import Config

from .runtimes import (CONFIG_KEY, QueryPoseOnnxRuntime, QueryPoseOpenVINO,
                       QueryPoseRuntime, checked_runtime_precision)

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


def runtime_config(runtime: QueryPoseRuntime,
                   onnx_file: str,
                   config: Optional[str] = None) -> Config:
    """The config of an exported model: ``config`` (a tool's ``--config``,
    checked by :func:`check_config_fits`), else the one the export stored
    in ``onnx_file``."""
    if config:
        cfg = Config.fromfile(config)
        check_config_fits(runtime, cfg.model, f'--config {config}')
        return cfg
    if CONFIG_KEY not in runtime.metadata:
        raise ValueError(f'{onnx_file} stores no config: give --config')
    return Config.fromstring(runtime.metadata[CONFIG_KEY], '.py')


def build_runtime(onnx_file: str,
                  backend: str = 'onnxruntime',
                  precision: str = 'fp32',
                  device: Optional[str] = None) -> QueryPoseRuntime:
    """The runtime of ``backend`` for an exported model.

    Args:
        onnx_file (str): An exported model.
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        precision (str): ``'fp32'``, or ``'bf16'`` (OpenVINO only);
            ``'f32'`` is read as ``'fp32'`` with a DeprecationWarning.
        device (str, optional): ``'cpu'`` or ``'cuda'`` (ONNX Runtime's
            CUDA provider, CPU as fallback); OpenVINO runs on its ``'CPU'``.
    """
    if backend not in RUNTIME_BACKENDS:
        raise ValueError(f'backend must be one of {RUNTIME_BACKENDS}, got '
                         f'{backend!r}')
    precision = checked_runtime_precision(precision)
    if backend == 'openvino':
        if device is not None and device.lower() != 'cpu':
            raise ValueError('the OpenVINO backend runs on the CPU here, got '
                             f'device {device!r}')
        return QueryPoseOpenVINO(onnx_file, precision)
    if precision != 'fp32':
        raise ValueError(f'ONNX Runtime runs the file in fp32; precision '
                         f'{precision!r} needs the OpenVINO backend')
    providers = ['CPUExecutionProvider']
    if device is not None and device.startswith('cuda'):
        providers.insert(0, 'CUDAExecutionProvider')
    return QueryPoseOnnxRuntime(onnx_file, providers)
