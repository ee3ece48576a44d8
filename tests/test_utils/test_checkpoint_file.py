"""Checkpoint files that cannot be used are errors naming the file, on every
path that loads one through mmengine (Runner, init_model, Inferencer)."""
import hashlib
import os

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from querypose_mm.testing import build_quickstart_model
from querypose_mm.utils import CheckpointFileError


@pytest.fixture(scope='module')
def model():
    return build_quickstart_model()


@pytest.fixture()
def good(tmp_path, model):
    path = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def test_mmengine_reads_local_files_through_the_checks():
    assert CheckpointLoader._get_checkpoint_loader('a/b.pth') is \
        CheckpointLoader._schemes['']
    assert CheckpointLoader._schemes[''].__module__ == \
        'querypose_mm.utils.checkpoint_file'


@pytest.mark.parametrize('content,what', [
    (b'', r'is empty \(0 bytes\)'),
    (b'{"not": "weights"}\n', 'is not a torch.save file'),
    (None, 'is a truncated torch.save file'),
])
def test_unusable_files_are_errors_naming_the_file(tmp_path, model, good,
                                                   content, what):
    path = str(tmp_path / 'bad.pth')
    if content is None:
        with open(good, 'rb') as f:
            content = f.read()[:os.path.getsize(good) // 2]
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(CheckpointFileError, match=what) as info:
        load_checkpoint(model, path)
    assert path in str(info.value)


def test_a_missing_file_names_it(tmp_path, model):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_checkpoint(model, str(tmp_path / 'nowhere.pth'))


def test_published_hash_is_checked_as_torch_hub_does(tmp_path, good, model):
    with open(good, 'rb') as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()[:8]
    published = tmp_path / f'querypose_tiny-{digest}.pth'
    published.write_bytes(data)
    load_checkpoint(model, str(published))
    other = '0' * 8 if digest != '0' * 8 else '1' * 8
    damaged = tmp_path / f'querypose_tiny-{other}.pth'
    damaged.write_bytes(data)
    with pytest.raises(
            CheckpointFileError,
            match=f'its name says SHA-256 {other}.*its content '
            f'has {digest}') as info:
        load_checkpoint(model, str(damaged))
    assert str(damaged) in str(info.value)
