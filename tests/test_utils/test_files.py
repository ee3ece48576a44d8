"""One writer for every output (atomic, the umask's permissions), one image
listing, names that never collide."""
import os
import pickle

import pytest

from querypose_mm.evaluation import AtomicDumpResults
from querypose_mm.utils import (atomic_output, atomic_write_bytes, list_images,
                                prediction_names, remove_partial_files)


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_complete_write_replaces_the_file_with_umask_permissions(
        tmp_path, umask_022):
    target = tmp_path / 'out' / 'metrics.json'
    atomic_write_bytes(b'{"AP": 0.7}', str(target))
    assert target.read_bytes() == b'{"AP": 0.7}'
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert os.listdir(target.parent) == ['metrics.json']


@pytest.mark.parametrize('failure', ['error', 'nothing written'])
def test_a_failed_write_keeps_the_good_file_and_leaves_nothing(
        tmp_path, failure):
    target = tmp_path / 'vis.jpg'
    target.write_bytes(b'good picture')
    with pytest.raises((OSError, RuntimeError)):
        with atomic_output(str(target)) as partial:
            assert partial.endswith('.partial.jpg')  # cv2 reads the suffix
            if failure == 'error':
                with open(partial, 'wb') as f:
                    f.write(b'half')
                raise OSError(28, 'No space left on device')
    assert target.read_bytes() == b'good picture'
    assert os.listdir(tmp_path) == ['vis.jpg']


def test_dump_results_keeps_the_old_pickle_when_the_new_one_fails(tmp_path):
    out = tmp_path / 'preds.pkl'
    AtomicDumpResults(str(out)).compute_metrics([dict(a=1)])
    assert pickle.loads(out.read_bytes()) == [dict(a=1)]
    with pytest.raises(Exception):
        AtomicDumpResults(str(out)).compute_metrics([lambda: 'unpicklable'])
    assert pickle.loads(out.read_bytes()) == [dict(a=1)]
    assert os.listdir(tmp_path) == ['preds.pkl']


def test_partial_files_of_interrupted_writes_are_removed(tmp_path):
    keep = tmp_path / 'iter_2.pth'
    keep.write_bytes(b'x')
    left = tmp_path / '.iter_4.1a2b3c4d.partial.pth'
    left.write_bytes(b'half')
    old_style = tmp_path / '.iter_6.pth.k2j3h4.partial'  # written by 9f5f5ea
    old_style.write_bytes(b'half')
    assert remove_partial_files(str(tmp_path)) == sorted(
        [str(left), str(old_style)])
    assert os.listdir(tmp_path) == ['iter_2.pth']


def test_images_are_listed_below_the_folder_and_sorted(tmp_path):
    for name in ('b/img.jpg', 'a/img.jpg', 'p.png', 'p.jpg', 'README',
                 'notes.txt', 'c/d/deep.JPEG'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'')
    assert list_images(str(tmp_path)) == [
        'a/img.jpg', 'b/img.jpg', 'c/d/deep.JPEG', 'p.jpg', 'p.png'
    ]


def test_prediction_names_never_collide():
    names = prediction_names(
        ['a/img.jpg', 'b/img.jpg', 'p.jpg', 'p.png', 'q.jpg'])
    assert names == {
        'a/img.jpg': 'a/img.json',
        'b/img.jpg': 'b/img.json',
        'p.jpg': 'p.jpg.json',
        'p.png': 'p.png.json',
        'q.jpg': 'q.json',
    }
    assert len(set(names.values())) == len(names)
