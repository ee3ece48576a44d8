"""Readiness for CUDA, checked without a GPU: the setup's refusals, the
GPU architectures of torch, the GPU check tool's refusal and its table, the
AMP settings of tools/train.py."""
import json
import os
import os.path as osp
import stat
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT, load_tool
from querypose_mm.utils.cuda_support import runs_on

# torch 2.14.1+cu130's torch._C._cuda_getArchFlags()
TORCH_CU130_ARCHS = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']


@pytest.mark.parametrize(
    'gpu, capability, arch_list, runs',
    [
        ('V100', (7, 0), TORCH_CU130_ARCHS, False),
        ('P100', (6, 0), TORCH_CU130_ARCHS, False),
        ('T4', (7, 5), TORCH_CU130_ARCHS, True),
        ('A100', (8, 0), TORCH_CU130_ARCHS, True),
        ('L4', (8, 9), TORCH_CU130_ARCHS, True),  # sm_86 cubins
        ('H100', (9, 0), TORCH_CU130_ARCHS, True),
        ('B200', (10, 0), TORCH_CU130_ARCHS, True),
        ('RTX 5090', (12, 0), TORCH_CU130_ARCHS, True),
        ('V100', (7, 0), ['sm_80', 'compute_70'], True),  # PTX
        ('V100', (7, 0), ['sm_50', 'sm_60', 'sm_70', 'sm_90'], True),
        ('future', (13, 0), ['sm_90a', 'sm_120'], False),
    ])
def test_which_gpus_a_torch_build_runs_on(gpu, capability, arch_list, runs):
    assert runs_on(capability, arch_list) is runs, gpu


def _fake_bin(tmp_path, real_python: str):
    """A PATH folder with an nvidia-smi that lists a GPU, no nvcc, and a
    python that installs nothing (pip is a no-op) and passes the GPU
    check."""
    folder = tmp_path / 'bin'
    folder.mkdir()
    scripts = {
        'nvidia-smi':
        'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"',
        'python3':
        ('if [[ "$1 $2" == "-m pip" ]]; then exit 0; fi\n'
         'if [[ "$1" == *check_mmcv_ops.py && "$2" == --gpus ]]; '
         'then echo "cuda:0 NVIDIA H100 (sm_90): supported"; exit 0; '
         'fi\n'
         f'exec {real_python} "$@"'),
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text('#!/usr/bin/env bash\n' + body + '\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return folder


def test_setup_refuses_a_gpu_without_nvcc(tmp_path):
    """With a GPU but no CUDA compiler, --cuda auto stops instead of
    building mmcv's CPU ops (which fail at the first CUDA forward)."""
    folder = _fake_bin(tmp_path, sys.executable)
    env = {
        k: v
        for k, v in os.environ.items() if k not in ('CUDA_HOME', 'PATH')
    }
    env.update(
        PATH=f'{folder}:/usr/bin:/bin',  # no /usr/local/bin/nvcc
        QUERYPOSE_WHEEL_CACHE=str(tmp_path / 'wheels'))
    proc = subprocess.run([
        'bash', 'tools/setup_env.sh', '--no-venv', '--skip-torch', '--python',
        str(folder / 'python3')
    ],
                          cwd=REPO_ROOT,
                          env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode != 0, proc.stdout
    assert 'cuda:0 NVIDIA H100 (sm_90): supported' in proc.stdout
    assert 'no CUDA compiler' in proc.stdout
    assert '--cuda no' in proc.stdout and 'CUDA toolkit 13.0' in proc.stdout
    assert 'FAILED at step' in proc.stdout and 'mmcv' in proc.stdout
    assert 'Building wheel for mmcv' not in proc.stdout


def test_check_mmcv_ops_gpus_refuses_without_a_usable_gpu():
    proc = subprocess.run(
        [sys.executable, 'tools/misc/check_mmcv_ops.py', '--gpus'],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True)
    assert proc.returncode == 1
    assert 'sees no GPU' in proc.stderr and 'driver' in proc.stderr


def test_check_gpu_refuses_in_one_line_without_cuda(capsys):
    check_gpu = load_tool('tools/misc/check_gpu.py')
    assert check_gpu.main([]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'sees no CUDA GPU' in err


def test_check_gpu_table_and_training_log(tmp_path):
    check_gpu = load_tool('tools/misc/check_gpu.py')
    rows = [
        check_gpu.run_check('fine', lambda: '2 iterations, loss 9 -> 8'),
        check_gpu.run_check('broken', lambda: 1 / 0),
    ]
    table = check_gpu.format_table(rows).splitlines()
    assert table[0].split() == ['check', 'ok', 'result', 's']
    assert table[1].split()[:3] == ['fine', 'yes', '2']
    assert 'FAIL' in table[2] and 'ZeroDivisionError' in table[2]
    log = tmp_path / '20260101_000000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    log.write_text('\n'.join(
        json.dumps(dict(loss=loss, iter=i)) for i, loss in enumerate([5, 4])))
    assert check_gpu.read_losses(str(tmp_path)) == [5, 4]


def test_amp_starts_from_a_scale_whose_gradients_are_finite(tmp_path):
    train = load_tool('tools/train.py')
    config = osp.join(
        REPO_ROOT, 'configs/querypose/coco/'
        'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')
    args = train.parse_args([config, '--amp', '--work-dir', str(tmp_path)])
    from mmengine.config import Config
    cfg = train.merge_args(Config.fromfile(config), args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == dict(init_scale=2.**10)
    assert torch.amp.GradScaler(
        'cpu', **cfg.optim_wrapper.loss_scale).get_scale() == 1024
