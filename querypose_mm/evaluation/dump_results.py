from mmengine.evaluator import DumpResults
from mmengine.fileio import dump
from mmengine.logging import print_log

from mmpose.registry import METRICS
from ..utils.files import atomic_output


@METRICS.register_module()
class AtomicDumpResults(DumpResults):
    """mmengine's ``DumpResults`` (``tools/test.py --dump``), whose pickle
    replaces an earlier one only once completely written."""

    def compute_metrics(self, results: list) -> dict:
        with atomic_output(self.out_file_path) as partial:
            dump(results, partial, file_format='pkl')
        print_log(
            f'Results has been saved to {self.out_file_path}.',
            logger='current')
        return {}
