"""Make mmengine checkpoints load under torch's ``weights_only`` unpickler.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and
mmengine 0.10.7 calls it without that argument. A checkpoint written by
mmengine's ``Runner`` holds, besides tensors, numpy arrays and scalars (dataset
meta, message hub) and ``HistoryBuffer`` objects whose pickled state names
their statistics methods through ``builtins.getattr``. Loading such a file
fails with "Weights only load failed".

Rather than switching back to full pickle (``weights_only=False``, which runs
any code a file carries), :func:`register_checkpoint_safe_globals` allowlists
exactly those types for the ``weights_only`` unpickler. ``builtins.getattr``
itself is never allowlisted: the name resolves to
:func:`history_buffer_statistic`, which only hands out HistoryBuffer's own
statistics methods. Everything else in a file still fails to load, as torch
intends.
"""
import pickle
from typing import Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner: type, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    Args:
        owner (type): The object the pickle looks the attribute up on.
        name (str): The attribute name.

    Returns:
        Callable: ``getattr(HistoryBuffer, name)`` for a statistics method of
        :class:`HistoryBuffer` (built in or registered with
        ``HistoryBuffer.register_statistics``).

    Raises:
        pickle.UnpicklingError: For any other lookup.
    """
    allowed = set(_BUILTIN_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Refusing getattr({owner!r}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics methods may be looked up. If you trust '
        'this file, load it with torch.load(..., weights_only=False).')


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """numpy types that pickled arrays, scalars and dtypes refer to."""
    # numpy 2 pickles as ``numpy._core.multiarray``; numpy 1 as
    # ``numpy.core.multiarray``. Register both names for either install.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    safe: List[Union[Callable, Tuple[Callable, str]]] = [np.ndarray, np.dtype]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        safe.append((multiarray._reconstruct, f'{module}._reconstruct'))
        safe.append((multiarray.scalar, f'{module}.scalar'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        safe.extend(
            getattr(dtypes, name) for name in dir(dtypes) if
            name.endswith('DType') and isinstance(getattr(dtypes, name), type))
    return safe


def register_checkpoint_safe_globals() -> None:
    """Allowlist what mmengine checkpoints hold for ``weights_only`` loads.

    Idempotent. Called when :mod:`querypose_mm` is imported, which every
    config of this project does through ``custom_imports``, so ``Runner``,
    ``tools/test.py --checkpoint``, ``--resume`` and the Inferencer load
    checkpoints without ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``.
    """
    torch.serialization.add_safe_globals(_numpy_globals() + [
        HistoryBuffer,
        (history_buffer_statistic, 'builtins.getattr'),
        (history_buffer_statistic, '__builtin__.getattr'),
    ])
