"""A local storage backend whose writes are atomic.

mmengine's ``LocalBackend.put`` opens the destination with ``'wb'`` and
writes into it, so a job killed mid-write (pre-emption, OOM killer) leaves a
truncated checkpoint, and a file rewritten in place (``last_checkpoint``,
a result dump) loses its good version. Here every write goes to a temporary
file in the same folder, is flushed to disk, and is renamed over the
destination (``os.replace`` is atomic on POSIX): readers see the old file or
the new one, never a part.

Use it with ``backend_args=dict(backend='atomic_local')`` (the
``CheckpointHook`` of this project's configs does).
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

import mmengine
from mmengine.fileio import LocalBackend, register_backend


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` through a temporary file and a rename.

    Args:
        data (bytes): The content.
        filepath (str | Path): The destination; its folder is created.
    """
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    mmengine.mkdir_or_exist(folder)
    fd, tmp_path = tempfile.mkstemp(
        prefix=f'.{osp.basename(filepath)}.', suffix='.partial', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, filepath)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with atomic ``put`` and ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)
