"""--resume after a kill at any moment: last_checkpoint empty, stale or
pointing at a truncated file."""
import os
import time

import torch

from querypose_mm.engine import (find_resumable_checkpoint,
                                 is_complete_checkpoint)


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
