"""`pip wheel .` builds a wheel that carries the configs, tools and model
index for mim, and that trains when installed without dependencies into
an environment that has the OpenMMLab stack."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

from conftest import COCO_MINI, REPO_ROOT


def _copy_of_the_checkout(dest):
    """The files git tracks or would (a build writes into the source
    tree)."""
    files = subprocess.run(
        ['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True).stdout.split()
    for name in files:
        os.makedirs(osp.join(dest, osp.dirname(name)), exist_ok=True)
        shutil.copy2(osp.join(REPO_ROOT, name), osp.join(dest, name))


def test_wheel_has_the_configs_and_trains_when_installed(tmp_path):
    source, dist, site = tmp_path / 'src', tmp_path / 'dist', tmp_path / 'site'
    _copy_of_the_checkout(str(source))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(dist),
        str(source)
    ],
                   check=True,
                   env=env,
                   capture_output=True)
    wheels = os.listdir(dist)
    assert len(wheels) == 1 and wheels[0].startswith('querypose_mm-')
    names = set(zipfile.ZipFile(dist / wheels[0]).namelist())
    mim = 'querypose_mm/.mim/'
    for name in ('configs/querypose/coco/'
                 'querypose_r50-fpn_8xb2-280k_coco-800x1333.py',
                 'configs/_base_/models/querypose_r50-fpn.py',
                 'model-index.yml', 'tools/train.py', 'tools/test.py'):
        assert mim + name in names, name
    metadata = zipfile.ZipFile(dist / wheels[0]).read(
        [n for n in names if n.endswith('METADATA')][0]).decode()
    assert 'Requires-Dist: mmpose<1.4,>=1.3.2' in metadata

    subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target',
        str(site),
        str(dist / wheels[0])
    ],
                   check=True,
                   env=env,
                   capture_output=True)
    installed = site / 'querypose_mm' / '.mim'
    imported = subprocess.run([
        sys.executable, '-c',
        'import querypose_mm; print(querypose_mm.__file__)'
    ],
                              env=dict(env, PYTHONPATH=str(site)),
                              capture_output=True,
                              text=True,
                              check=True,
                              cwd=str(tmp_path)).stdout
    assert imported.startswith(str(site)), imported
    # mim reads the model index of the installed package
    found = subprocess.run([
        osp.join(osp.dirname(sys.executable), 'mim'), 'search', 'querypose_mm'
    ],
                           env=dict(env, PYTHONPATH=str(site)),
                           capture_output=True,
                           text=True,
                           check=True,
                           cwd=str(tmp_path)).stdout
    assert 'querypose_r50-fpn_8xb2-280k_coco-800x1333' in found
    assert 'querypose_hrnet-w32-hrfpn-light_8xb2-280k_coco-800x1333' in found
    # the installed package (not the checkout) trains with its own tools
    # and configs
    proc = subprocess.run([
        sys.executable,
        str(installed / 'tools' / 'train.py'),
        str(installed / 'configs' / 'querypose' / 'coco' /
            'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py'),
        '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', 'train_cfg.max_iters=2',
        f'train_dataloader.dataset.data_root={COCO_MINI}',
        f'val_dataloader.dataset.data_root={COCO_MINI}',
        f'test_dataloader.dataset.data_root={COCO_MINI}',
        'default_hooks.checkpoint.interval=2'
    ],
                          cwd=str(tmp_path),
                          env=dict(env, PYTHONPATH=str(site)),
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
