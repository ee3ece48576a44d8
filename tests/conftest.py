import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_DATA = osp.join(REPO_ROOT, 'tests', 'data')
COCO_MINI = osp.join(REPO_ROOT, 'data', 'coco_mini')


@pytest.fixture(autouse=True)
def mmpose_default_scope():
    """Build unprefixed types in mmpose's registries, as mmpose configs do."""
    import querypose_mm  # noqa: F401
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)


def tiny_head_cfg(**overrides):
    """A CPU-sized QueryPoseHead: 64 channels, 2 stages, 10 queries."""
    channels = 64
    cfg = dict(
        type='QueryPoseHead',
        num_queries=10,
        num_stages=2,
        in_channels=channels,
        part_dim=32,
        box_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(
                type='RoIAlign', output_size=7, sampling_ratio=2,
                aligned=True),
            out_channels=channels,
            featmap_strides=[4, 8, 16, 32]),
        pose_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(
                type='RoIAlign', output_size=14, sampling_ratio=2,
                aligned=True),
            out_channels=channels,
            featmap_strides=[4]),
        box_decoder=dict(
            type='DIIHead',
            num_classes=1,
            feedforward_channels=128,
            in_channels=channels,
            dynamic_conv_cfg=dict(
                type='DynamicConv',
                in_channels=channels,
                feat_channels=16,
                out_channels=channels,
                input_feat_shape=7),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                clip_border=False,
                target_means=[0., 0., 0., 0.],
                target_stds=[0.5, 0.5, 1., 1.])),
        keypoint_decoder=dict(
            type='KeypointDecoderStage',
            num_heads=4,
            feedforward_channels=128,
            spegm=dict(num_convs=1, conv_channels=channels),
            dynamic_conv_cfg=dict(feat_channels=16)))
    cfg.update(overrides)
    return cfg


def finite_training_step(model, samples):
    """One forward/backward on ``samples``; asserts that every loss term and
    every gradient is finite, and returns the losses."""
    import torch
    from mmengine.dataset import pseudo_collate
    model.zero_grad()
    batch = model.data_preprocessor(pseudo_collate(samples), training=True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    for name, value in losses.items():
        assert torch.isfinite(value), name
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name
    return losses
