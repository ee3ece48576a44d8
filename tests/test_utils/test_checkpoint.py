"""mmengine checkpoints save, load and resume under torch >= 2.6."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, find_latest_checkpoint, load_checkpoint
from torch.utils.data import Dataset

import querypose_mm  # noqa: F401  (registers the safe globals)
from querypose_mm.utils import (atomic_write_bytes, history_buffer_statistic,
                                read_checkpoint)


class _TinyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - 1)**2).mean())
        return out


class _TinyDataset(Dataset):
    # numpy arrays and scalars, as mmpose's dataset meta has them
    metainfo = dict(
        sigmas=np.array([0.026, 0.025], dtype=np.float32),
        flip_indices=[1, 0],
        scale=np.float64(2.0))

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(inputs=torch.tensor([index, 1.0]) / 8)


def _runner(work_dir,
            max_iters,
            resume=False,
            load_from=None,
            checkpoint=None):
    torch.manual_seed(0)  # the model is built before the Runner seeds
    return Runner(
        model=_TinyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=_TinyDataset(),
            batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=4)
        ],
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=checkpoint
            or dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from,
        default_scope='mmengine')


def test_runner_checkpoint_loads_with_weights_only(tmp_path):
    runner = _runner(str(tmp_path), max_iters=2)
    runner.train()
    path = osp.join(str(tmp_path), 'iter_2.pth')
    # torch >= 2.6 loads with weights_only=True by default
    ckpt = torch.load(path, map_location='cpu')
    assert ckpt['meta']['iter'] == 2
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    np.testing.assert_array_equal(ckpt['meta']['dataset_meta']['sigmas'],
                                  _TinyDataset.metainfo['sigmas'])
    state = runner.model.state_dict()
    for key, value in ckpt['state_dict'].items():
        torch.testing.assert_close(value, state[key])
    # and through mmengine's own loader
    model = _TinyModel()
    load_checkpoint(model, path, map_location='cpu')
    torch.testing.assert_close(model.linear.weight, runner.model.linear.weight)


def test_resume_continues_the_same_run(tmp_path):
    straight = _runner(str(tmp_path / 'straight'), max_iters=4)
    straight.train()

    first = _runner(str(tmp_path / 'split'), max_iters=2)
    first.train()
    resumed = _runner(str(tmp_path / 'split'), max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4
    # same seed, data order, optimizer and scheduler state: same weights
    torch.testing.assert_close(resumed.model.linear.weight,
                               straight.model.linear.weight)
    torch.testing.assert_close(resumed.model.linear.bias,
                               straight.model.linear.bias)
    assert resumed.optim_wrapper.get_lr() == straight.optim_wrapper.get_lr()


def test_atomic_checkpoint_hook_replaces_last_checkpoint_for_mmengines_resume(
        tmp_path, monkeypatch):
    """mmengine's hook rewrites the pointer in place; ours replaces it
    whole, and mmengine's own resume (no load_from) finds it."""
    from querypose_mm.engine import AtomicCheckpointHook, checkpoint_hook
    replaced = []

    def record(data, path):
        replaced.append((data, path))
        atomic_write_bytes(data, path)

    monkeypatch.setattr(checkpoint_hook, 'atomic_write_bytes', record)

    def hook():
        return AtomicCheckpointHook(
            interval=2,
            by_epoch=False,
            backend_args=dict(backend='atomic_local'))

    work_dir = str(tmp_path)
    _runner(work_dir, max_iters=4, checkpoint=hook()).train()
    pointer = osp.join(work_dir, 'last_checkpoint')
    assert [(data.decode(), path) for data, path in replaced] == [
        (osp.join(work_dir, f'iter_{i}.pth'), pointer) for i in (2, 4)
    ]
    assert sorted(n for n in os.listdir(work_dir) if n.startswith('.')) == []
    # what Runner(resume=True) without load_from resumes from
    assert find_latest_checkpoint(work_dir) == osp.join(work_dir, 'iter_4.pth')
    resumed = _runner(work_dir, max_iters=6, resume=True, checkpoint=hook())
    resumed.train()
    assert resumed.iter == 6
    assert find_latest_checkpoint(work_dir) == osp.join(work_dir, 'iter_6.pth')


class _Exploit:

    def __reduce__(self):
        return (os.system, ('echo pwned', ))


def test_arbitrary_code_in_a_checkpoint_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': _Exploit()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    # and through the project's loader (mmengine's for local files)
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        read_checkpoint(path)


def test_getattr_stand_in_only_allows_history_buffer_statistics():
    assert history_buffer_statistic(HistoryBuffer,
                                    'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='Refusing getattr'):
        history_buffer_statistic(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError, match='Refusing getattr'):
        history_buffer_statistic(os, 'system')
