"""A local storage backend whose writes are atomic.

mmengine's ``LocalBackend.put`` opens the destination with ``'wb'`` and
writes into it, so a job killed mid-write (pre-emption, OOM killer) leaves a
truncated checkpoint, and a file rewritten in place (``last_checkpoint``,
a result dump) loses its good version. Here every write goes to a temporary
file in the same folder, is flushed to disk, and is renamed over the
destination (:func:`querypose_mm.utils.atomic_output`): readers see the old
file or the new one, never a part.

Use it with ``backend_args=dict(backend='atomic_local')`` (the
``CheckpointHook`` of this project's configs does).
"""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from ..utils.files import atomic_write_bytes


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with atomic ``put`` and ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, str(filepath))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), str(filepath))
