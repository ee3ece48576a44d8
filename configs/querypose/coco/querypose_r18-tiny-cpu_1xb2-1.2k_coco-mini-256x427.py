# A CPU-sized QueryPose for the quick start and the learning checks: the
# paper's model (configs/_base_/models/querypose_r50-fpn.py) shrunk to train
# from scratch, offline, in minutes on 2 cores: half-width ResNet-18 + FPN at
# 64 channels, 12 queries, 2 stages, 7 parts of 32 dims, a 1-conv stack on a
# 7x7 pose RoI, short side 256. It trains in the paper's regime, as the model
# base: every query decoded, serial Q_I flow in training and at test. (In
# the official v1 regime, 'matched_only', the full version hands only the
# matched queries' refined Q_I to the next box decoder, and a model this
# small learns that shortcut instead of the persons: AP 0.22 on its training
# images.) The v1 regime trains the light quick start,
# querypose_r18-tiny-cpu-light_*.
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_140k.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_r50-fpn.py',
]

channels = 64
model = dict(
    backbone=dict(
        depth=18,
        # half-width (32..256 channels): the convolutions are most of a CPU
        # training step
        stem_channels=32,
        base_channels=32,
        # from scratch (nothing downloaded), so every stage and norm learns
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    head=dict(
        num_queries=12,
        num_stages=2,
        in_channels=channels,
        part_dim=32,
        box_roi_extractor=dict(out_channels=channels),
        pose_roi_extractor=dict(
            roi_layer=dict(output_size=7), out_channels=channels),
        box_decoder=dict(
            num_heads=4,
            feedforward_channels=256,
            in_channels=channels,
            dynamic_conv_cfg=dict(
                in_channels=channels, feat_channels=16,
                out_channels=channels)),
        keypoint_decoder=dict(
            # the modules' own init (kaiming conv stack, coordinate linears
            # at gain 0.01): after the official xavier re-init this short
            # run from scratch reaches AP 0.62 instead of 0.73 (light,
            # official regime)
            xavier_reinit=False,
            num_convs=1,
            conv_channels=channels,
            num_heads=4,
            feedforward_channels=256,
            dynamic_conv_cfg=dict(feat_channels=16))),
    test_cfg=dict(max_per_img=12))

# An overfit of 9 images (data/PROVENANCE.md): one scale and no flip or
# crop, so that it memorises them within the time. Point data_root /
# ann_file / data_prefix at any COCO-format folder to use your own.
data_root = 'data/coco_mini/'
short_side = 256
max_size = 427
train_pipeline = [
    dict(type='LoadImageOrSkip', skip_broken=False),
    dict(type='FilterInstances'),
    dict(type='RandomShortSideResize', scales=[short_side], max_size=max_size),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomShortSideResize', scales=short_side, max_size=max_size),
    dict(type='PackPoseInputs', meta_keys={{_base_.val_meta_keys}}),
]
# on 2 cores a loader process only competes with the model
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_train2017_quickstart.json',
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=val_pipeline))
test_dataloader = val_dataloader
# the ground truth comes from the evaluated images themselves (PackPoseInputs
# keeps raw_ann_info), so a subset is scored on its own
val_evaluator = dict(ann_file=None)
test_evaluator = val_evaluator

max_iters = 1200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    # foreach: one fused update over all tensors (torch's default only on
    # CUDA; the per-tensor loop is ~12% of a CPU step)
    optimizer=dict(lr=5e-4, foreach=True),
    # the RLE-style coordinate linears (L2-normalised input) learn too slowly
    # for a run this short at the base lr
    paramwise_cfg=dict(custom_keys={'coord_head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=20)
randomness = dict(seed=0)
