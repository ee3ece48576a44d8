"""Each benchmark row in a process of its own."""
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable


def _silence_output() -> None:
    """Send what a worker prints (mmengine logs the initialisation of each
    weight) to the null device: the row, or its error, comes back as the
    call's result."""
    null = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(null, stream.fileno())


def in_fresh_process(fn: Callable, *args):
    """``fn(*args)`` in a new (spawned) process, its result or its error
    returned or raised as if called here.

    Each row gets a process of its own, so that its peak memory is its
    own and nothing an earlier model loaded or set (threads, oneDNN's
    caches) carries over. One pool per call: a process that dies (a
    runtime's crash) breaks only its own pool, as
    ``concurrent.futures.process.BrokenProcessPool``.

    Args:
        fn (Callable): A module-level function (spawn pickles it by name).
        *args: Its arguments, which must pickle.
    """
    with ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context('spawn'),
            initializer=_silence_output) as pool:
        return pool.submit(fn, *args).result()
