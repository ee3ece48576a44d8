"""Side-by-side benchmark of QueryPose and mmpose's multi-person peers
(``tools/analysis/benchmark.py`` is its command line)."""
from .measure import (export_for_benchmark, measure, measure_onnxruntime,
                      time_calls)
from .models import (MODES, SPECS, ModelSpec, as_batch, build_model,
                     load_inputs, split_entry)
from .report import format_table, write_results

__all__ = [
    'MODES', 'export_for_benchmark', 'measure_onnxruntime', 'split_entry',
    'SPECS', 'ModelSpec', 'as_batch', 'build_model', 'format_table',
    'load_inputs', 'measure', 'time_calls', 'write_results'
]
