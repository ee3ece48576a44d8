"""Every config builds its model and its dataloaders' datasets/pipelines."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

from conftest import REPO_ROOT
from mmpose.registry import DATASETS, MODELS

CONFIGS = sorted(
    glob.glob(
        osp.join(REPO_ROOT, 'configs', 'querypose', '**', '*.py'),
        recursive=True))
PAPER_CONFIGS = [c for c in CONFIGS if '8xb2' in c and 'ablations' not in c]
ABLATION_CONFIGS = [c for c in CONFIGS if 'ablations' in c]
# Parameters of each model as built. R50: the official full R50 model's
# 322,641,480, less its 99,840 unused (updater.fc3/norm_fc3), plus the 53,120
# BN affine parameters that detectron2's FrozenBN keeps as buffers.
NUM_PARAMS = {
    # 14 keypoints: 3 fewer x 6 stages x 2 heads (coordinates, sigmas) x
    # (128 x 2 + 2)
    'querypose_r50-fpn_8xb2-280k_aic-800x1333': 322585472,
    'querypose_r50-fpn_8xb2-280k_coco-800x1333_test-ochuman': 322594760,
    # the official light W32 and full W48 models (their 194,249,008 /
    # 364,433,840) less the unused parameters, plus the RLE flow (53,784),
    # which the official code keeps in its criterion
    'querypose_hrnet-w32-hrfpn-light_8xb2-280k_coco-800x1333': 193612872,
    'querypose_hrnet-w48-hrfpnv1_8xb2-280k_coco-800x1333': 363785160,
    # the full W32 and the light W48 (the released W48): the Q_I update's
    # 133,918,464 (the R50 full less light) more, or fewer
    'querypose_hrnet-w32-hrfpn_8xb2-280k_coco-800x1333': 327531336,
    'querypose_hrnet-w48-hrfpnv1-light_8xb2-280k_coco-800x1333': 229866696,
    'querypose_r50-fpn-fig3a_8xb2-140k_coco-800x1333': 322594760,
    'querypose_r50-fpn-iter-concat_8xb2-140k_coco-800x1333': 322716488,
    'querypose_r50-fpn-iter-none_8xb2-140k_coco-800x1333': 322519112,
    'querypose_r50-fpn-iter-sum_8xb2-140k_coco-800x1333': 322519112,
    'querypose_r50-fpn-light_8xb2-140k_coco-800x1333': 188676296,
    'querypose_r50-fpn-partdim256_8xb2-140k_coco-800x1333': 328782280,
    'querypose_r50-fpn-partdim32_8xb2-140k_coco-800x1333': 318566984,
    'querypose_r50-fpn-partdim64_8xb2-140k_coco-800x1333': 319851208,
    'querypose_r50-fpn-parts13_8xb2-140k_coco-800x1333': 323862764,
    'querypose_r50-fpn-parts17_8xb2-140k_coco-800x1333': 324708100,
    'querypose_r50-fpn-parts5_8xb2-140k_coco-800x1333': 322172092,
    'querypose_hrnet-w32-fpn_8xb2-280k_coco-800x1333': 327532104,
    'querypose_hrnet-w48-fpn_8xb2-280k_coco-800x1333': 363613128,
    'querypose_r101-fpn_8xb2-280k_coco-800x1333': 341586888,
    'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427': 4865224,
    'querypose_r18-tiny-cpu-light-100q_1xb2-1.2k_coco-mini-256x427': 4136168,
    # 88 fewer queries x (64 + 4)
    'querypose_r18-tiny-cpu-light_1xb2-1.2k_coco-mini-256x427': 4130184,
    'querypose_r50-fpn_8xb2-140k_coco-800x1333': 322594760,
    'querypose_r50-fpn_8xb2-280k_coco-800x1333': 322594760,
    'querypose_r50-fpn-matchedonly_8xb2-280k_coco-800x1333': 322594760,
    'querypose_swin-l-fpn_8xb2-280k_coco-800x1333': 493839132,
    'querypose_hrnet-w48-fpn_8xb2-280k_crowdpose-800x1333': 363603840,
    'querypose_swin-l-fpn_8xb2-280k_crowdpose-800x1333': 493829844,
}


def _rel(path):
    return osp.relpath(path, REPO_ROOT)


def test_a_config_for_every_backbone_and_dataset_of_the_paper():
    names = {osp.basename(c) for c in CONFIGS}
    for name in [
            'querypose_r50-fpn_8xb2-140k_coco-800x1333.py',
            'querypose_r50-fpn_8xb2-280k_coco-800x1333.py',
            'querypose_r101-fpn_8xb2-280k_coco-800x1333.py',
            'querypose_hrnet-w32-fpn_8xb2-280k_coco-800x1333.py',
            'querypose_hrnet-w48-fpn_8xb2-280k_coco-800x1333.py',
            'querypose_swin-l-fpn_8xb2-280k_coco-800x1333.py',
            'querypose_hrnet-w48-fpn_8xb2-280k_crowdpose-800x1333.py',
            'querypose_swin-l-fpn_8xb2-280k_crowdpose-800x1333.py',
            'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py',
    ]:
        assert name in names


@pytest.mark.parametrize('config', CONFIGS, ids=_rel)
def test_model_builds_and_matches_the_dataset(config):
    cfg = Config.fromfile(config)
    assert cfg.data_mode == 'bottomup'  # MMPoseInferencer reads it
    model = MODELS.build(cfg.model)
    head = model.head
    num_params = sum(p.numel() for p in model.parameters())
    assert num_params == NUM_PARAMS[osp.basename(config)[:-3]]
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cls = DATASETS.get(dataset_cfg.type)
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    meta = parse_pose_metainfo(dataset_cls.METAINFO)
    assert head.num_keypoints == meta['num_keypoints']
    # the neck's width is what the head's RoI extractors read
    assert model.neck.out_channels == head.in_channels
    del model


@pytest.mark.parametrize('config', CONFIGS, ids=_rel)
def test_dataloader_pipelines_build(config):
    cfg = Config.fromfile(config)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset_cfg = cfg[key].dataset.copy()
        Compose(dataset_cfg.pipeline)
        # data roots may be absent here: build the dataset, do not load it
        dataset_cfg.lazy_init = True
        dataset = DATASETS.build(dataset_cfg)
        assert dataset.data_mode == 'bottomup'
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.val_evaluator.nms_mode == 'none'
    assert cfg.val_evaluator.score_mode == 'bbox'


@pytest.mark.parametrize(
    'config',
    [c for c in PAPER_CONFIGS + ABLATION_CONFIGS if 'matchedonly' not in c],
    ids=_rel)
def test_paper_configs_train_and_test_like_the_papers_code(config):
    """e249749: every query decoded in training, the refined Q_I handed on
    in both phases (Fig. 3(a) ablation: in neither)."""
    cfg = Config.fromfile(config)
    head = cfg.model.head
    assert head.train_regime == 'all_queries'
    flow = head.instance_query_flow
    assert flow == ('box_only' if 'fig3a' in config else 'serial')
    assert head.wh_ratio_clip == 16 / 100000 and head.growth_only_clip
    assert head.keypoint_decoder.xavier_reinit
    assert cfg.train_dataloader.dataset.filter_cfg == dict(
        filter_empty_gt=True)
    backbone = cfg.model.backbone
    if backbone.type == 'mmdet.ResNet':
        # detectron2's FrozenBN, FREEZE_AT 2
        assert backbone.norm_cfg.requires_grad is False
        assert backbone.norm_eval and backbone.frozen_stages == 1


def test_the_v1_variant_differs_only_in_its_regime():
    paper = Config.fromfile(
        osp.join(
            REPO_ROOT, 'configs/querypose/coco/'
            'querypose_r50-fpn_8xb2-280k_coco-800x1333.py'))
    variant = Config.fromfile(
        osp.join(
            REPO_ROOT, 'configs/querypose/coco/'
            'querypose_r50-fpn-matchedonly_8xb2-280k_coco-800x1333.py'))
    assert variant.model.head.train_regime == 'matched_only'
    assert variant.model.head.instance_query_flow == dict(
        train='serial', test='box_only')
    variant.model.head.update(
        train_regime='all_queries', instance_query_flow='serial')
    assert variant.model.to_dict() == paper.model.to_dict()
    assert variant.train_dataloader == paper.train_dataloader


@pytest.mark.parametrize('config', PAPER_CONFIGS, ids=_rel)
def test_paper_hyper_parameters(config):
    cfg = Config.fromfile(config)
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW'
    assert optimizer.lr == 2.5e-5 and optimizer.weight_decay == 1e-4
    assert cfg.optim_wrapper.clip_grad.max_norm == 1.0
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys[
        'flow_model'].lr_mult == 10.0
    # 8 GPUs x 2 images = 16 images per iteration
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.auto_scale_lr.base_batch_size == 16
    milestones = {
        140000: [110000, 130000],
        280000: [220000, 260000]
    }[cfg.train_cfg.max_iters]
    step = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0]
    assert step.milestones == milestones
    head = cfg.model.head
    assert (head.num_queries, head.num_stages, head.part_dim) == (100, 6, 128)
    assert len(head.part_groups) == 7
    resize = cfg.val_dataloader.dataset.pipeline[1]
    assert (resize.scales, resize.max_size) == (800, 1333)
    train_resize = cfg.train_dataloader.dataset.pipeline[3]
    sides = train_resize.transforms[0][0].scales
    assert (min(sides), max(sides)) == (480, 800)
    assert 'RandomCropInstances' in str(train_resize.transforms[1])


def test_cpu_config_trains_one_step_on_real_images():
    config = osp.join(REPO_ROOT, 'configs', 'querypose', 'coco',
                      'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')
    cfg = Config.fromfile(config)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = osp.join(REPO_ROOT, dataset_cfg.data_root)
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 9
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    batch = model.data_preprocessor(
        dict(
            inputs=[dataset[i]['inputs'] for i in range(2)],
            data_samples=[dataset[i]['data_samples'] for i in range(2)]),
        training=True)
    losses = model(**batch, mode='loss')
    assert len(losses) == 4 * cfg.model.head.num_stages
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize('config', ABLATION_CONFIGS, ids=_rel)
def test_ablation_configs_change_only_the_model_of_the_140k_config(config):
    base = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'querypose', 'coco',
                 'querypose_r50-fpn_8xb2-140k_coco-800x1333.py'))
    cfg = Config.fromfile(config)
    with open(config) as f:
        header = f.readline()
    assert header.startswith('# Table') or 'light version' in header
    assert cfg.model.head != base.model.head
    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler',
                'train_dataloader', 'val_evaluator'):
        assert cfg[key] == base[key], key
