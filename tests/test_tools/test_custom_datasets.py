"""docs/custom_dataset.md's worked example (AI Challenger, 14 keypoints)
trains and evaluates, and the OCHuman test config evaluates, on the
bundled fixtures of mmpose's own test suite, with the quick-start-sized
model (the configs' paper-sized model is what a GPU user trains)."""
import os
import os.path as osp
import re
import subprocess
import sys

import torch
from mmengine.config import Config

from conftest import REPO_ROOT, TEST_DATA
from mmpose.registry import MODELS
from querypose_mm.testing import QUICKSTART_CONFIG, get_quickstart_model_cfg

CONFIGS = osp.join(REPO_ROOT, 'configs', 'querypose')
QUICKSTART = Config.fromfile(osp.join(CONFIGS, QUICKSTART_CONFIG[10:]))


def _cpu_sized(cfg: Config, fixture: str, ann_file: str) -> Config:
    """The config's data on a bundled fixture, with the quick start's model
    sizes and input size."""
    head = cfg.model.head
    cfg.model = get_quickstart_model_cfg(
        dict(
            head=dict(
                num_keypoints=head.num_keypoints,
                part_groups=head.part_groups)))
    root = osp.join(TEST_DATA, 'mmpose_tests', fixture) + '/'
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(num_workers=0, persistent_workers=False, batch_size=2)
        loader.dataset.update(
            data_root=root, ann_file=ann_file, data_prefix=dict(img=''))
        loader.dataset.pipeline = QUICKSTART[
            f'{split}_dataloader'].dataset.pipeline
    cfg.train_dataloader.batch_size = 2
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = root + ann_file
    return cfg


def _run(args, cwd):
    proc = subprocess.run(
        [sys.executable] + args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def test_aic_worked_example_trains_and_evaluates(tmp_path):
    cfg = _cpu_sized(
        Config.fromfile(
            osp.join(CONFIGS, 'aic',
                     'querypose_r50-fpn_8xb2-280k_aic-800x1333.py')), 'aic',
        'test_aic.json')
    cfg.train_cfg.update(max_iters=3, val_interval=3)
    cfg.default_hooks.checkpoint.interval = 3
    config = str(tmp_path / 'aic_cpu.py')
    cfg.dump(config)
    output = _run([
        osp.join(REPO_ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(tmp_path / 'work'), '--show-dir', 'vis'
    ], REPO_ROOT)
    ap = float(re.search(r'aic/AP: (\d\.\d+)', output).group(1))
    assert 0.0 <= ap <= 1.0
    # --show-dir (mmpose's flag): in training, mmpose's visualization hook
    # draws the first image of each validation batch into the log's
    # vis_data/vis_image
    drawn = [
        name for _, _, names in os.walk(tmp_path / 'work') for name in names
        if name.startswith('val_img') and name.endswith('.png')
    ]
    assert len(drawn) >= 1
    output = _run([
        osp.join(REPO_ROOT, 'tools', 'test.py'), config,
        str(tmp_path / 'work' / 'iter_3.pth'), '--work-dir',
        str(tmp_path / 'test')
    ], REPO_ROOT)
    assert re.search(r'aic/AP: \d\.\d+', output)


def test_ochuman_test_config_evaluates_a_coco_model(tmp_path):
    cfg = _cpu_sized(
        Config.fromfile(
            osp.join(
                CONFIGS, 'ochuman',
                'querypose_r50-fpn_8xb2-280k_coco-800x1333_test-ochuman.py')),
        'ochuman', 'test_ochuman.json')
    assert cfg.test_dataloader.dataset.type == 'CheckedOCHumanDataset'
    config = str(tmp_path / 'ochuman_cpu.py')
    cfg.dump(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    checkpoint = str(tmp_path / 'coco_model.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    output = _run([
        osp.join(REPO_ROOT, 'tools', 'test.py'), config, checkpoint,
        '--work-dir',
        str(tmp_path / 'test')
    ], REPO_ROOT)
    assert re.search(r'ochuman/AP: \d\.\d+', output)
