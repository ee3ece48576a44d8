"""Local checkpoint files checked where they are read.

Replaces mmengine's loader of local paths (``CheckpointLoader`` scheme
``''``), through which ``Runner`` (``load_from``, ``--resume``), mmpose's
``init_model``, the Inferencer and every tool of this project load weights:

- an empty, truncated or non-checkpoint file is an error naming the file,
  not a ``torch.load`` traceback;
- a file whose name ends in ``-<8 hex digits>.pth`` (mmpose's
  ``publish_model``) must have a SHA-256 starting with those digits, as
  ``torch.hub`` checks its downloads;
- the path of the file being loaded is kept for the model's own check of
  what the file holds (:func:`pop_checkpoint_file_read`).
"""
import contextvars
import hashlib
import os.path as osp
import pickle
import re
import zipfile
from typing import Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

_PUBLISHED_NAME = re.compile(r'-([0-9a-f]{8})\.pth$')
_LAST_FILE_READ: contextvars.ContextVar = contextvars.ContextVar(
    'querypose_checkpoint_file', default=None)


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be used, with what to do about it."""


def pop_checkpoint_file_read() -> Optional[str]:
    """The local checkpoint file read last in this context, forgotten once
    asked for (None if none since), so a later load of a state dict from
    memory is not taken for that file's."""
    path = _LAST_FILE_READ.get()
    _LAST_FILE_READ.set(None)
    return path


def sha256_of_file(path: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def check_published_hash(path: str) -> None:
    """Raise if ``path`` is named ``*-<hash>.pth`` by ``publish_model`` and
    its content does not have that SHA-256 prefix."""
    match = _PUBLISHED_NAME.search(osp.basename(path))
    if match is None:
        return
    actual = sha256_of_file(path)
    if not actual.startswith(match.group(1)):
        raise CheckpointFileError(
            f'checkpoint {path}: its name says SHA-256 {match.group(1)}... '
            f'(publish_model), its content has {actual[:8]}...: the file '
            'was changed or damaged after publishing; download or copy it '
            'again (or, if that suffix is not a hash, rename the file)')


def check_torch_save_file(filename: str, what: str = 'checkpoint') -> None:
    """Fail, naming the file, on what no loading option could read: a
    missing, empty, truncated or non-``torch.save`` file.

    Args:
        filename (str): The file.
        what (str): What the user gave it as, for the messages.

    Raises:
        FileNotFoundError: No such file.
        CheckpointFileError: Empty, truncated or not a checkpoint.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{what} {filename} does not exist')
    size = osp.getsize(filename)
    if size == 0:
        raise CheckpointFileError(
            f'{what} {filename} is empty (0 bytes), e.g. a save that was '
            'interrupted; use another checkpoint of its work dir')
    with open(filename, 'rb') as f:
        head = f.read(2)
    # torch.save writes a zip archive (torch >= 1.6) or a pickle (older)
    if head == b'PK' and not zipfile.is_zipfile(filename):
        raise CheckpointFileError(
            f'{what} {filename} ({size} bytes) is a truncated torch.save '
            'file (its zip directory is missing), e.g. a copy or save that '
            'was interrupted; use another checkpoint of its work dir')
    if head != b'PK' and head[:1] != b'\x80':
        raise CheckpointFileError(
            f'{what} {filename} ({size} bytes) is not a torch.save file; '
            'pass the .pth file that tools/train.py or publish_model wrote')


def read_checkpoint(filename: str, map_location=None) -> dict:
    """``torch.load`` a local checkpoint, with errors that name the file.

    Args:
        filename (str): Path of a ``torch.save`` file.
        map_location: As for :func:`torch.load`.

    Returns:
        dict: The loaded object.

    Raises:
        FileNotFoundError: No such file.
        CheckpointFileError: Empty, truncated, not a checkpoint, or another
            content than its published hash.
        pickle.UnpicklingError: The file needs code execution to load
            (refused by ``weights_only``); the message names the file.
    """
    filename = osp.expanduser(filename)
    check_torch_save_file(filename)
    size = osp.getsize(filename)
    check_published_hash(filename)
    try:
        checkpoint = torch.load(filename, map_location=map_location)
    except pickle.UnpicklingError as error:
        raise pickle.UnpicklingError(f'checkpoint {filename}: {error}') \
            from error
    except Exception as error:
        raise CheckpointFileError(
            f'checkpoint {filename} ({size} bytes) cannot be read '
            f'({type(error).__name__}: {error}); it may be damaged: use '
            'another copy') from error
    _LAST_FILE_READ.set(filename)
    return checkpoint


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """mmengine's loader of local paths, through :func:`read_checkpoint`."""
    return read_checkpoint(filename, map_location)
