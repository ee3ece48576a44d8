"""Find the checkpoint to resume from, surviving a kill at any moment."""
import glob
import os.path as osp
import zipfile
from typing import List, Optional

from mmengine.dist import barrier, is_main_process
from mmengine.logging import print_log

from ..utils import remove_partial_files


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file.

    torch writes a zip archive whose central directory comes last, so a
    truncated file fails this check without reading the tensors.
    """
    return osp.isfile(path) and zipfile.is_zipfile(path)


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should continue from, or None.

    mmengine's ``find_latest_checkpoint`` trusts
    ``<work_dir>/last_checkpoint``. :class:`AtomicCheckpointHook` writes it
    atomically, but a work dir of mmengine's own ``CheckpointHook`` (which
    rewrites it with ``open(..., 'w')``) may hold an empty one, and one that
    points at a file removed or truncated since leaves ``--resume``
    failing. This reads that pointer first and, when it does not name a
    complete checkpoint, falls back to the newest complete ``*.pth`` of the
    work dir.

    Args:
        work_dir (str): The training run's work dir.

    Returns:
        str | None: Path of the checkpoint, None if the dir holds none.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and is_complete_checkpoint(named):
            return named
    candidates = sorted((p for p in glob.glob(osp.join(work_dir, '*.pth'))
                         if is_complete_checkpoint(p)),
                        key=osp.getmtime)
    if named is not None:
        print_log(
            f'{pointer} names {named!r}, which is not a complete '
            'checkpoint; resuming from '
            f'{candidates[-1] if candidates else "nothing (a fresh start)"}',
            logger='current',
            level=30)
    return candidates[-1] if candidates else None


def remove_interrupted_saves(work_dir: str) -> List[str]:
    """Remove what an interrupted save left in ``work_dir``, once per job.

    Called after the process group exists (the Runner's ``init_dist``): the
    main process removes, every other one waits at a barrier, so two ranks
    never delete the same file (the second would stop on
    ``FileNotFoundError``) and none starts before the folder is clean.
    Outside distributed training this is :func:`remove_partial_files`.

    Args:
        work_dir (str): The training run's work dir; a missing one is left.

    Returns:
        list[str]: The paths this process removed (none on other ranks).
    """
    removed = []
    if is_main_process() and osp.isdir(work_dir):
        removed = remove_partial_files(work_dir)
        for path in removed:
            print_log(
                f'removed {path}, left by an interrupted save',
                logger='current')
    barrier()
    return removed
