"""Files the project writes and the images it lists: one helper per job.

Every writer of the project (checkpoints through the ``atomic_local``
backend, metrics and prediction dumps, demo pictures, JSON and videos,
plots, ONNX files, converted checkpoints, data subsets) goes through
:func:`atomic_output`: the content is written to a hidden temporary file
beside the destination and renamed over it only once complete, so a kill or
a full disk never leaves half a file in place of a good one. The file gets
the permissions of an ordinary ``open(path, 'w')`` (the umask's), not
``mkstemp``'s 0600.
"""
import collections
import contextlib
import glob
import json
import os
import os.path as osp
import secrets
import shutil
from typing import Dict, Iterator, List, Sequence

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
PARTIAL_MARK = '.partial'


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """A temporary path to write ``path``'s content to; renamed over
    ``path`` when the block ends without an error, removed otherwise.

    The temporary name keeps the extension, for writers that choose the
    format by it (``cv2.imwrite``, ``cv2.VideoWriter``, ``savefig``).

    Args:
        path (str): The destination; its folder is created.

    Yields:
        str: Where to write, e.g. ``.name.3f2a9c.partial.jpg`` beside it.
    """
    path = osp.abspath(path)
    folder, name = osp.split(path)
    os.makedirs(folder, exist_ok=True)
    stem, ext = osp.splitext(name)
    partial = osp.join(folder,
                       f'.{stem}.{secrets.token_hex(4)}{PARTIAL_MARK}{ext}')
    # created here with the umask's permissions; the writer opens it again
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield partial
        if osp.getsize(partial) == 0:
            raise OSError(f'nothing was written for {path}')
        with open(partial, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        if osp.exists(partial):
            os.remove(partial)


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as partial:
        with open(partial, 'wb') as f:
            f.write(data)


def dump_json_atomically(data, path: str, indent=1) -> None:
    """Write ``data`` as JSON to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as partial:
        with open(partial, 'w') as f:
            json.dump(data, f, indent=indent)


def remove_partial_files(folder: str) -> List[str]:
    """Remove what interrupted writes left in ``folder`` (not below it):
    :func:`atomic_output`'s files and ``AtomicCheckpointHook``'s scratch
    folders; the removed paths."""
    removed = sorted(
        glob.glob(osp.join(glob.escape(folder), f'.*{PARTIAL_MARK}*')))
    for path in removed:
        if osp.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return removed


def list_images(folder: str) -> List[str]:
    """Paths of the images below ``folder`` (sub-folders included),
    relative to it, sorted."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found += [
            osp.relpath(osp.join(root, name), folder) for name in names
            if name.lower().endswith(IMAGE_SUFFIXES)
        ]
    return sorted(found)


def prediction_names(inputs: Sequence[str]) -> Dict[str, str]:
    """A JSON name for each input (relative path): its path with ``.json``
    for the extension, or, where two inputs share that (``p.jpg`` and
    ``p.png``), with ``.json`` after the extension, so none overwrites
    another."""
    stems = {name: osp.splitext(name)[0] for name in inputs}
    shared = collections.Counter(stems.values())
    return {
        name: (stem if shared[stem] == 1 else name) + '.json'
        for name, stem in stems.items()
    }
