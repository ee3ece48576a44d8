# COCO person keypoints, all persons of an image per sample (bottom-up mode).
dataset_type = 'CheckedCocoDataset'
data_mode = 'bottomup'
data_root = 'data/coco/'
train_ann_file = 'annotations/person_keypoints_train2017.json'
train_img_prefix = 'train2017/'
val_ann_file = 'annotations/person_keypoints_val2017.json'
val_img_prefix = 'val2017/'

# Detectron2-style multi-scale training of Sparse R-CNN / QueryPose: short
# side 480..800 (step 32, long side <= 1333); with p=0.5, first a short side
# of 400/500/600 and a 384-600 random crop.
train_short_sides = [480 + 32 * i for i in range(11)]
test_short_side = 800
max_size = 1333

train_pipeline = [
    # skip_broken=True: log and skip an unreadable image instead of stopping
    dict(type='LoadImageOrSkip', skip_broken=False),
    dict(type='FilterInstances'),
    # before any resize: mmpose's RandomFlip reads (h, w) from img_shape only
    # while no input_size is set
    dict(type='RandomFlip', direction='horizontal', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomShortSideResize',
                    scales=train_short_sides,
                    max_size=max_size)
            ],
            [
                dict(
                    type='RandomShortSideResize',
                    scales=[400, 500, 600],
                    max_size=None),
                dict(type='RandomCropInstances', crop_size=(384, 600)),
                dict(
                    type='RandomShortSideResize',
                    scales=train_short_sides,
                    max_size=max_size)
            ],
        ]),
    dict(type='PackPoseInputs'),
]
# mmpose's default meta_keys carry 'category_id', which in bottom-up mode is
# a per-person list that CocoMetric writes into the result file as one
# (unhashable) category; mmpose's own bottom-up configs leave it out too.
val_meta_keys = ('id', 'img_id', 'img_path', 'ori_shape', 'img_shape',
                 'input_size', 'input_center', 'input_scale', 'flip',
                 'flip_direction', 'flip_indices', 'raw_ann_info',
                 'dataset_name', 'crowd_index')
val_pipeline = [
    dict(type='LoadImage'),
    dict(
        type='RandomShortSideResize',
        scales=test_short_side,
        max_size=max_size),
    dict(type='PackPoseInputs', meta_keys=val_meta_keys),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    # iteration-based training: mmengine pauses 2 s whenever a finite
    # sampler restarts
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file=train_ann_file,
        data_prefix=dict(img=train_img_prefix),
        # the official DATALOADER.FILTER_EMPTY_ANNOTATIONS: no image whose
        # persons are all crowd regions
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
    ))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file=val_ann_file,
        data_prefix=dict(img=val_img_prefix),
        test_mode=True,
        pipeline=val_pipeline,
    ))
test_dataloader = val_dataloader

# NMS-free: every kept person is scored by its pose score (bbox_scores).
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + val_ann_file,
    score_mode='bbox',
    nms_mode='none')
test_evaluator = val_evaluator
