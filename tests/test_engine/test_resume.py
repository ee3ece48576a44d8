"""--resume after a kill at any moment: last_checkpoint empty, stale or
pointing at a truncated file; leftovers of interrupted saves removed once
under distributed training."""
import os
import socket
import time

import torch
import torch.multiprocessing as mp

from querypose_mm.engine import (find_resumable_checkpoint,
                                 is_complete_checkpoint,
                                 remove_interrupted_saves)


def _save(path, step):
    torch.save(dict(meta=dict(iter=step), state_dict={}), str(path))
    # distinct modification times, oldest first
    os.utime(path, (time.time() - 100 + step, time.time() - 100 + step))
    return str(path)


def test_follows_a_good_pointer(tmp_path):
    first = _save(tmp_path / 'iter_1.pth', 1)
    _save(tmp_path / 'iter_2.pth', 2)
    (tmp_path / 'last_checkpoint').write_text(first)
    assert find_resumable_checkpoint(str(tmp_path)) == first


def test_empty_pointer_falls_back_to_newest_complete(tmp_path):
    _save(tmp_path / 'iter_1.pth', 1)
    second = _save(tmp_path / 'iter_2.pth', 2)
    (tmp_path / 'last_checkpoint').write_text('')  # killed while rewriting
    assert find_resumable_checkpoint(str(tmp_path)) == second


def test_truncated_files_are_never_chosen(tmp_path):
    good = _save(tmp_path / 'iter_1.pth', 1)
    whole = open(good, 'rb').read()
    truncated = tmp_path / 'iter_2.pth'
    truncated.write_bytes(whole[:len(whole) // 2])
    os.utime(truncated)  # the newest file
    (tmp_path / 'last_checkpoint').write_text(str(truncated))
    assert not is_complete_checkpoint(str(truncated))
    assert is_complete_checkpoint(good)
    assert find_resumable_checkpoint(str(tmp_path)) == good


def test_nothing_saved_yet_is_a_fresh_start(tmp_path):
    assert find_resumable_checkpoint(str(tmp_path)) is None
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) is None


def _clean_on_rank(rank: int, work_dir: str, port: int, results) -> None:
    import torch.distributed as dist
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    try:
        dist.barrier()  # both ranks reach the cleanup together
        results[rank] = remove_interrupted_saves(work_dir)
    finally:
        dist.destroy_process_group()


def test_two_ranks_resuming_together_clean_once(tmp_path):
    # what AtomicCheckpointHook and atomic_output leave behind a kill; many,
    # so that two ranks deleting them in turn would collide
    names = [f'.iter_{i}.pth.{i:08x}.partial' for i in range(300)]
    for name in names:
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / '.ckpt_scratch.partial').mkdir()
    (tmp_path / 'iter_2.pth').write_bytes(b'kept')
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    results = mp.Manager().dict()
    mp.start_processes(
        _clean_on_rank,
        args=(str(tmp_path), port, results),
        nprocs=2,
        start_method='fork')
    assert len(results[0]) == len(names) + 1 and results[1] == []
    assert os.listdir(tmp_path) == ['iter_2.pth']
