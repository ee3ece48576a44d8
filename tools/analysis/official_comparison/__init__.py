"""Our head against the official QueryPose modules, side by side
(``tools/analysis/compare_with_official.py`` is its command line)."""
from .harness import Inputs, compare_version, make_inputs
from .official_source import (OfficialModules, import_official, official_cfg,
                              official_tree, resolve_revision)
from .report import (Check, Thresholds, VersionResult, checks, exit_code,
                     format_version, max_abs_difference, ratio_to_largest,
                     relative_difference, verdict)
from .standins import ROIPooler, standin_modules

__all__ = [
    'Check', 'Inputs', 'OfficialModules', 'ROIPooler', 'Thresholds',
    'VersionResult', 'checks', 'compare_version', 'exit_code',
    'format_version', 'import_official', 'make_inputs', 'max_abs_difference',
    'official_cfg', 'official_tree', 'ratio_to_largest', 'relative_difference',
    'resolve_revision', 'standin_modules', 'verdict'
]
