"""SIGKILL a training run, resume it: the losses continue as if unbroken."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch

from conftest import COCO_MINI, REPO_ROOT

CPU_CONFIG = osp.join(REPO_ROOT, 'configs', 'querypose', 'coco',
                      'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')
MAX_ITERS = 6


def _cmd(work_dir, subset, extra=()):
    return [
        sys.executable, 'tools/train.py', CPU_CONFIG, '--work-dir',
        str(work_dir), *extra, '--cfg-options',
        f'train_dataloader.dataset.data_root={COCO_MINI}',
        f'train_dataloader.dataset.ann_file={subset}',
        f'val_dataloader.dataset.data_root={COCO_MINI}',
        'train_dataloader.num_workers=0', 'default_hooks.logger.interval=1',
        'log_processor.window_size=1', 'default_hooks.checkpoint.interval=3',
        f'train_cfg.max_iters={MAX_ITERS}', 'train_cfg.val_interval=1000',
        'randomness.seed=0'
    ]


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1')


def _train_to_the_end(cmd):
    subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=600)


def _losses(work_dir):
    """iter -> loss from every run's scalars.json under work_dir."""
    losses = {}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses[record['iter']] = record['loss']
    return losses


def _subset(tmp_path):
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
    from dataset_converters.coco_subset import make_coco_subset
    subset = str(tmp_path / 'subset.json')
    make_coco_subset(
        osp.join(COCO_MINI, 'annotations', 'person_keypoints_train2017.json'),
        subset, [790, 211325])
    return subset


def test_killed_run_resumes_with_the_same_losses(tmp_path):
    subset = _subset(tmp_path)
    unbroken = tmp_path / 'unbroken'
    _train_to_the_end(_cmd(unbroken, subset))
    reference = _losses(unbroken)
    assert sorted(reference) == list(range(1, MAX_ITERS + 1))

    broken = tmp_path / 'broken'
    proc = subprocess.Popen(
        _cmd(broken, subset),
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while not (broken / 'last_checkpoint').is_file():
            assert proc.poll() is None, 'training ended before a checkpoint'
            assert time.time() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (broken / f'iter_{MAX_ITERS}.pth').exists()
    # the checkpoint that last_checkpoint names is complete
    with open(broken / 'last_checkpoint') as f:
        last = f.read().strip()
    assert torch.load(last, map_location='cpu')['meta']['iter'] == 3
    assert not glob.glob(str(broken / '.*.partial*'))
    # what a kill during a save leaves (54 MB for the quick start)
    leftover = broken / '.iter_6.0a1b2c3d.partial.pth'
    leftover.write_bytes(b'half a checkpoint')

    _train_to_the_end(_cmd(broken, subset, extra=['--resume']))
    assert not leftover.exists()
    resumed = _losses(broken)
    for it in range(4, MAX_ITERS + 1):
        assert abs(resumed[it] -
                   reference[it]) <= 1e-4 * max(1.0, abs(reference[it])), (
                       it, resumed[it], reference[it])
    assert (broken / f'iter_{MAX_ITERS}.pth').is_file()


def test_atomic_backend_never_leaves_a_partial_file(tmp_path, monkeypatch):
    from querypose_mm.utils import atomic_write_bytes
    target = tmp_path / 'iter_3.pth'
    atomic_write_bytes(b'good checkpoint', target)

    def fail(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', fail)
    try:
        atomic_write_bytes(b'half', target)
    except OSError:
        pass
    assert target.read_bytes() == b'good checkpoint'
    assert os.listdir(tmp_path) == ['iter_3.pth']
