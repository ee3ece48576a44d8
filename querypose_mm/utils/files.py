"""Files the project writes and the images it lists: one helper per job.

Every writer of the project (checkpoints through the ``atomic_local``
backend, metrics and prediction dumps, demo pictures, JSON and videos,
plots, ONNX files, converted checkpoints, data subsets) goes through
:func:`atomic_output`: the content is written to a hidden temporary file
beside the destination and renamed over it only once complete, so a kill or
a full disk never leaves half a file in place of a good one. The file gets
the permissions of an ordinary ``open(path, 'w')`` (the umask's), not
``mkstemp``'s 0600.

The tools check a path as it enters, before loading a model: an output
folder or file that cannot be written (:func:`check_output_dir`,
:func:`check_output_file`), an output that is an input however it is
spelled (:func:`check_not_input`), an input folder without images
(:func:`list_images`).
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


def _nearest_existing(path: str) -> str:
    path = osp.abspath(path)
    while not osp.exists(path):
        path = osp.dirname(path)
    return path


def check_output_dir(folder: str, what: str = 'output folder') -> None:
    """Fail before any work if ``folder`` is a file or cannot be written
    (a missing folder is created later, by the first write).

    Args:
        folder (str): The folder the outputs go to.
        what (str): How the user gave it, e.g. ``'--out-dir'``.
    """
    existing = _nearest_existing(folder)
    if not osp.isdir(existing):
        raise NotADirectoryError(
            f'{what} {folder!r}: {existing!r} is a file, not a folder; '
            'give a folder path')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f'{what} {folder!r}: {existing!r} is not '
                              'writable; give a folder you can write to')


def check_output_file(path: str, what: str = 'output file') -> None:
    """Fail before any work if ``path`` is a folder or its folder cannot be
    written (:func:`atomic_output` writes beside it)."""
    if osp.isdir(path):
        raise IsADirectoryError(f'{what} {path!r} is a folder; give a file '
                                'name')
    check_output_dir(osp.dirname(osp.abspath(path)), what)


def same_file(path: str, other: str) -> bool:
    """Whether two paths name one file, however spelled (``./a``,
    ``dir/../a``, a symbolic or hard link)."""
    if osp.realpath(path) == osp.realpath(other):
        return True
    try:
        return osp.samefile(path, other)
    except OSError:  # one of them does not exist yet
        return False


def check_not_input(output: str, output_what: str, input_path: str,
                    input_what: str) -> None:
    """Fail if writing ``output`` would replace the input ``input_path``."""
    if same_file(output, input_path):
        raise ValueError(
            f'{output_what} {output!r} is the {input_what} '
            f'{input_path!r}: writing it would replace its own input; give '
            f'another {output_what}')


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (links resolved)."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def list_images(folder: str, exclude: Sequence[str] = ()) -> List[str]:
    """Paths of the images below ``folder``, relative to it, sorted.

    Sub-folders are listed too, symbolic links to folders followed (each
    real folder once, so a link loop ends), and the ``exclude`` folders
    left out (a tool's output folder inside its input folder: its own
    outputs are no inputs).

    Raises:
        FileNotFoundError: If ``folder`` holds no image.
        PermissionError: If a sub-folder cannot be read.
    """

    def unreadable(error: OSError) -> None:
        raise PermissionError(f'{error.filename}: cannot be listed '
                              f'({error.strerror}); fix its permissions or '
                              'move it out of the input folder')

    found = []
    seen = set()
    for root, dirs, names in os.walk(
            folder, onerror=unreadable, followlinks=True):
        real = osp.realpath(root)
        if real in seen or any(is_inside(root, skip) for skip in exclude):
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        found += [
            osp.relpath(osp.join(root, name), folder) for name in names if
            name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith('.')
        ]
    if not found:
        raise FileNotFoundError(
            f'{folder!r} holds no image ({", ".join(IMAGE_SUFFIXES)}, in it '
            'or below it); give a folder with images')
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
