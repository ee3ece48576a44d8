"""Deployment: ONNX export, ONNX Runtime and OpenVINO inference."""
from .onnx_export import (AllLevelsRoIExtractor, QueryPoseOnnxModel,
                          check_exportable, export_onnx, verify_export)
from .runtimes import (RUNTIME_BACKENDS, QueryPoseOnnxRuntime,
                       QueryPoseOpenVINO, QueryPoseRuntime, build_runtime)

__all__ = [
    'AllLevelsRoIExtractor', 'QueryPoseOnnxModel', 'QueryPoseOnnxRuntime',
    'QueryPoseOpenVINO', 'QueryPoseRuntime', 'RUNTIME_BACKENDS',
    'build_runtime', 'check_exportable', 'export_onnx', 'verify_export'
]
