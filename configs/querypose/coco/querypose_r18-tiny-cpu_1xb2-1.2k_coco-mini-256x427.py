# A CPU-sized QueryPose for the quick start and the learning checks: trains
# from scratch (no pretrained weights, nothing downloaded) on a handful of
# real COCO images in minutes on 2 cores. Same architecture as the paper's
# (box decoder, SPEGM, SIM, part attention, RLE, Hungarian matching), shrunk:
# half-width ResNet-18 + FPN at 64 channels, 12 queries, 2 stages, 7 parts of
# 32 dims, a 1-conv SPEGM stack on a 7x7 pose RoI, short side 256 (no flip);
# lr 5e-4 (coordinate heads x10), 1200 iterations.
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_r50-fpn.py',
]

data_root = 'data/coco_mini/'
channels = 64
max_iters = 1200

# The paper's model (configs/_base_/models/querypose_r50-fpn.py) with only
# widths and sizes changed.
model = dict(
    backbone=dict(
        depth=18,
        # half-width ResNet-18 (32..256 channels): the convolutions are most
        # of a CPU training step
        stem_channels=32,
        base_channels=32,
        # from scratch, so every stage and norm learns
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        # from scratch: nothing is downloaded
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    head=dict(
        num_queries=12,
        # 2 stages and a 7x7 pose RoI (paper: 6 and 14x14) fit 1200
        # iterations in ~7 min on 2 cores (measured: AP 0.760 on the trained
        # images; 3 stages at 14x14 reached AP 0.582 after 900 iterations
        # in 10.7 min)
        num_stages=2,
        in_channels=channels,
        part_dim=32,
        max_per_img=12,
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
            num_convs=1,
            conv_channels=channels,
            num_heads=4,
            feedforward_channels=256,
            dynamic_conv_cfg=dict(feat_channels=16))))

# The quick start is an overfit of 9 images: one scale and no flip let it
# memorise them within the time (measured: AP 0.000 after 450 iterations
# with flip and short sides 288-352, AP 0.582 after 900 at 256 without, both
# with 3 stages and a 14x14 pose RoI).
train_short_sides = [256]
test_short_side = 256
max_size = 427
train_pipeline = [
    # skip_broken=True: log and skip an unreadable image instead of stopping
    dict(type='LoadImageOrSkip', skip_broken=False),
    dict(type='FilterInstances'),
    dict(
        type='RandomShortSideResize',
        scales=train_short_sides,
        max_size=max_size),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(
        type='RandomShortSideResize',
        scales=test_short_side,
        max_size=max_size),
    # no 'category_id' (see configs/_base_/datasets/coco_bottomup_querypose.py)
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'img_id', 'img_path', 'ori_shape', 'img_shape',
                   'input_size', 'input_center', 'input_scale', 'flip',
                   'flip_direction', 'flip_indices', 'raw_ann_info',
                   'dataset_name')),
]
# Nine real train2017 images with 36 persons with keypoints (see
# data/PROVENANCE.md); point data_root / ann_file / data_prefix at any
# COCO-format folder to use your own.
# num_workers=0: on 2 cores a loader process only competes with the model
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    # an endless sampler: mmengine pauses 2 s at every restart of a finite
    # one, i.e. every 5 iterations on 9 images
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_train2017_quickstart.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=val_pipeline))
test_dataloader = val_dataloader
# ann_file=None: the ground truth comes from the evaluated images themselves
# (PackPoseInputs keeps raw_ann_info), so a subset is scored on its own.
val_evaluator = dict(
    type='CocoMetric', ann_file=None, score_mode='bbox', nms_mode='none')
test_evaluator = val_evaluator

train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    # foreach: one fused update over all 421 tensors; torch enables it by
    # default on CUDA only, and the per-tensor loop is ~12% of a CPU step
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4, foreach=True),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    # The coordinate heads are RLE-style linears (L2-normalised input,
    # xavier gain 0.01): at this lr their outputs grow too slowly for a
    # few hundred iterations and every person gets the mean pose (measured:
    # AP 0.000 after 450 iterations with lr 2e-4 and no multiplier).
    paramwise_cfg=dict(custom_keys={
        'flow_model': dict(lr_mult=10.0),
        'coord_head': dict(lr_mult=10.0)
    }))
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
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(window_size=20)
randomness = dict(seed=0)
