"""Side-by-side benchmark of QueryPose and mmpose's multi-person peers
(``tools/analysis/benchmark.py`` is its command line)."""
from .measure import measure, time_calls
from .models import SPECS, ModelSpec, as_batch, build_model, load_inputs
from .report import format_table, write_results

__all__ = [
    'SPECS', 'ModelSpec', 'as_batch', 'build_model', 'format_table',
    'load_inputs', 'measure', 'time_calls', 'write_results'
]
