"""Deployment: ONNX export, ONNX Runtime and OpenVINO inference."""
from .backends import (RUNTIME_BACKENDS, build_runtime, check_config_fits,
                       runtime_config)
from .onnx_export import (AllLevelsRoIExtractor, QueryPoseOnnxModel,
                          check_exportable, check_graph_test_cfg, export_onnx,
                          runtime_test_cfg)
from .runtimes import (PRECISIONS, QueryPoseOnnxRuntime, QueryPoseOpenVINO,
                       QueryPoseRuntime, padded_size, short_side_resize_shape)
from .verification import verify_export

__all__ = [
    'AllLevelsRoIExtractor', 'PRECISIONS', 'QueryPoseOnnxModel',
    'QueryPoseOnnxRuntime', 'QueryPoseOpenVINO', 'QueryPoseRuntime',
    'RUNTIME_BACKENDS', 'build_runtime', 'check_config_fits',
    'check_exportable', 'check_graph_test_cfg', 'export_onnx', 'padded_size',
    'runtime_config', 'runtime_test_cfg', 'short_side_resize_shape',
    'verify_export'
]
