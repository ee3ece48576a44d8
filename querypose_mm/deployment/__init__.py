"""Deployment: ONNX export, ONNX Runtime and OpenVINO inference."""
from .onnx_export import (AllLevelsRoIExtractor, QueryPoseOnnxModel,
                          check_exportable, check_graph_test_cfg, export_onnx,
                          runtime_test_cfg, verify_export)
from .runtimes import (RUNTIME_BACKENDS, QueryPoseOnnxRuntime,
                       QueryPoseOpenVINO, QueryPoseRuntime, build_runtime,
                       check_config_fits)

__all__ = [
    'AllLevelsRoIExtractor', 'QueryPoseOnnxModel', 'QueryPoseOnnxRuntime',
    'QueryPoseOpenVINO', 'QueryPoseRuntime', 'RUNTIME_BACKENDS',
    'build_runtime', 'check_config_fits', 'check_exportable',
    'check_graph_test_cfg', 'export_onnx', 'runtime_test_cfg', 'verify_export'
]
