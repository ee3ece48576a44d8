"""Side-by-side benchmark of QueryPose and mmpose's multi-person peers
(``tools/analysis/benchmark.py`` is its command line)."""
from .measure import (export_for_benchmark, measure, measure_runtime,
                      module_breakdown, time_calls)
from .models import (MODES, PYTORCH_MODES, RUNTIME_MODES, SPECS, ModelSpec,
                     as_batch, build_model, load_inputs, split_entry)
from .report import compare_latencies, format_table, write_results

__all__ = [
    'MODES', 'PYTORCH_MODES', 'RUNTIME_MODES', 'SPECS', 'ModelSpec',
    'as_batch', 'build_model', 'compare_latencies', 'export_for_benchmark',
    'format_table', 'load_inputs', 'measure', 'measure_runtime',
    'module_breakdown', 'split_entry', 'time_calls', 'write_results'
]
