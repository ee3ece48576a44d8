"""Deployment: ONNX export and ONNX Runtime inference."""
from .onnx_export import (AllLevelsRoIExtractor, QueryPoseOnnxModel,
                          check_exportable, export_onnx, verify_export)
from .onnxruntime_inference import QueryPoseOnnxRuntime

__all__ = [
    'AllLevelsRoIExtractor', 'QueryPoseOnnxModel', 'QueryPoseOnnxRuntime',
    'check_exportable', 'export_onnx', 'verify_export'
]
