"""mmengine's ``CheckpointHook`` with an atomic ``last_checkpoint``."""
import os.path as osp
import shutil
import tempfile

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmpose.registry import HOOKS
from ..utils.files import PARTIAL_MARK, atomic_write_bytes


class _WorkDirElsewhere:
    """The runner, but with another ``work_dir``: where mmengine's hook
    writes ``last_checkpoint``."""

    def __init__(self, runner, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name):
        return getattr(self._runner, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose ``<work_dir>/last_checkpoint`` is replaced
    atomically.

    mmengine 0.10.7 rewrites that pointer with ``open(..., 'w')``: a job
    killed at that moment leaves it empty, and mmengine's own resume
    (``Runner(resume=True)``, mmpose's ``train.py --resume``, ``mim train
    --resume``) then has nothing to resume from. Here mmengine writes it
    into a scratch folder, and its content replaces the pointer through
    :func:`querypose_mm.utils.atomic_write_bytes`. The checkpoints
    themselves are atomic through ``backend_args=dict(backend=
    'atomic_local')``.
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        scratch = tempfile.mkdtemp(
            prefix='.last_checkpoint.',
            suffix=PARTIAL_MARK,
            dir=runner.work_dir)
        try:
            super()._save_checkpoint_with_step(
                _WorkDirElsewhere(runner, scratch), step, meta)
            written = osp.join(scratch, 'last_checkpoint')
            if is_main_process() and osp.isfile(written):
                with open(written, 'rb') as f:
                    atomic_write_bytes(
                        f.read(), osp.join(runner.work_dir, 'last_checkpoint'))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
