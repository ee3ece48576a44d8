"""Side-by-side benchmark of QueryPose and mmpose's multi-person peers
(``tools/analysis/benchmark.py`` is its command line)."""
from .fresh_process import in_fresh_process
from .measure import (ExportedModel, Settings, export_for_benchmark, measure,
                      time_calls)
from .models import (MODES, PYTORCH_MODES, RUNTIME_MODES, SPECS, Mode,
                     ModelSpec, as_batch, build_model, load_inputs,
                     split_entry)
from .profiling import count_macs, module_breakdown, module_groups
from .report import compare_latencies, format_table, write_results

__all__ = [
    'MODES', 'PYTORCH_MODES', 'RUNTIME_MODES', 'SPECS', 'ExportedModel',
    'Mode', 'ModelSpec', 'Settings', 'as_batch', 'build_model',
    'compare_latencies', 'count_macs', 'export_for_benchmark', 'format_table',
    'in_fresh_process', 'load_inputs', 'measure', 'module_breakdown',
    'module_groups', 'split_entry', 'time_calls', 'write_results'
]
