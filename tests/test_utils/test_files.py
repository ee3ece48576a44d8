"""One writer for every output (atomic, the umask's permissions), one image
listing, names that never collide."""
import os
import pickle

import pytest

from querypose_mm.evaluation import AtomicDumpResults
from querypose_mm.utils import (atomic_output, atomic_write_bytes,
                                check_not_input, check_output_dir,
                                check_output_file, list_images,
                                prediction_names, remove_partial_files,
                                same_file)


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


def test_images_below_symlinked_folders_are_listed_and_loops_end(tmp_path):
    for name in ('a/img.jpg', 'elsewhere/far.jpg'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'')
    images = tmp_path / 'a'
    (images / 'linked').symlink_to(tmp_path / 'elsewhere')
    (images / 'loop').symlink_to(images)  # a link to its own folder
    (images / '.hidden.jpg').write_bytes(b'')  # e.g. a '._' resource fork
    assert list_images(str(images)) == ['img.jpg', 'linked/far.jpg']


def test_output_folders_inside_the_input_are_not_listed(tmp_path):
    for name in ('img.jpg', 'out/visualizations/img.jpg',
                 'out/predictions/x.png', 'out/keep/other.jpg'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'')
    excluded = [
        str(tmp_path / 'out' / 'visualizations'),
        # spelled another way, as a user may give --out-dir
        str(tmp_path / 'out' / '..' / 'out' / 'predictions'),
    ]
    assert list_images(
        str(tmp_path), exclude=excluded) == ['img.jpg', 'out/keep/other.jpg']


def test_a_folder_without_images_is_an_error_naming_it(tmp_path):
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(
            FileNotFoundError, match=f'{tmp_path}.*holds no '
            'image'):
        list_images(str(tmp_path))


def test_outputs_are_checked_before_any_work(tmp_path, monkeypatch):
    (tmp_path / 'file').write_text('x')
    check_output_dir(str(tmp_path / 'new' / 'deeper'), '--out-dir')
    check_output_file(str(tmp_path / 'new' / 'a.json'), '--out')
    with pytest.raises(NotADirectoryError, match="--out-dir.*is a file"):
        check_output_dir(str(tmp_path / 'file'), '--out-dir')
    with pytest.raises(NotADirectoryError, match='--out-dir'):
        check_output_dir(str(tmp_path / 'file' / 'sub'), '--out-dir')
    with pytest.raises(IsADirectoryError, match="--out '.*' is a folder"):
        check_output_file(str(tmp_path), '--out')
    # a read-only folder (asked as the tools ask: root may write anyway)
    monkeypatch.setattr(os, 'access', lambda path, mode: False)
    with pytest.raises(PermissionError, match='--out.*is not writable'):
        check_output_file(str(tmp_path / 'a.json'), '--out')


def test_an_output_that_is_its_input_however_spelled_is_refused(tmp_path):
    source = tmp_path / 'in.pth'
    source.write_bytes(b'x')
    (tmp_path / 'd').mkdir()
    (tmp_path / 'link.pth').symlink_to(source)
    os.link(source, tmp_path / 'hard.pth')
    for spelling in (str(source), str(tmp_path / 'd' / '..' / 'in.pth'),
                     str(tmp_path / 'link.pth'), str(tmp_path / 'hard.pth')):
        assert same_file(spelling, str(source))
        with pytest.raises(ValueError, match='replace its own input'):
            check_not_input(spelling, 'DST', str(source), 'SRC')
    assert not same_file(str(tmp_path / 'new.pth'), str(source))
    check_not_input(str(tmp_path / 'new.pth'), 'DST', str(source), 'SRC')
