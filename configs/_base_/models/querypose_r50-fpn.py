# QueryPose with ResNet-50 + FPN (P2-P5, 256 channels): 100 queries, 6 stages,
# 7 parts of 128 dimensions (paper §4.1; scheme (c) of Fig. 4). Every
# hyper-parameter of the model is here; the other model bases and the CPU
# quick start inherit this file and override what differs.
channels = 256
model = dict(
    type='QueryPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # detectron2's FrozenBN and FREEZE_AT 2 (the official code): every
        # norm frozen, the stem and the first stage not trained
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=channels,
        num_outs=4),
    head=dict(
        type='QueryPoseHead',
        num_keypoints=17,
        # scheme (c): face, shoulders, left/right elbow+wrist, hips,
        # left/right knee+ankle
        part_groups=[[0, 1, 2, 3, 4], [5, 6], [7, 9], [8, 10], [11, 12],
                     [13, 15], [14, 16]],
        num_queries=100,
        num_stages=6,
        in_channels=channels,
        part_dim=128,
        proposals=dict(type='LearnableProposals'),
        # box decoder: RoIAlign 7x7 on P2-P5 (mmdet maps a RoI to its level)
        box_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(
                type='RoIAlign', output_size=7, sampling_ratio=2,
                aligned=True),
            out_channels=channels,
            featmap_strides=[4, 8, 16, 32]),
        # keypoint decoder: RoIAlign 14x14 on P2 only
        pose_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(
                type='RoIAlign',
                output_size=14,
                sampling_ratio=2,
                aligned=True),
            out_channels=channels,
            featmap_strides=[4]),
        box_decoder=dict(
            type='DIIHead',
            num_classes=1,
            num_ffn_fcs=2,
            num_heads=8,
            num_cls_fcs=1,
            num_reg_fcs=3,
            feedforward_channels=2048,
            in_channels=channels,
            dropout=0.0,
            ffn_act_cfg=dict(type='ReLU', inplace=True),
            dynamic_conv_cfg=dict(
                type='DynamicConv',
                in_channels=channels,
                feat_channels=64,
                out_channels=channels,
                input_feat_shape=7,
                act_cfg=dict(type='ReLU', inplace=True),
                norm_cfg=dict(type='LN')),
            # only its use_sigmoid is read (background class layout); the
            # loss itself is the criterion's
            loss_cls=dict(type='FocalLoss', use_sigmoid=True),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                clip_border=False,
                target_means=[0., 0., 0., 0.],
                target_stds=[0.5, 0.5, 1., 1.])),
        keypoint_decoder=dict(
            type='KeypointDecoderStage',
            # the 6-conv stack of the paper's baseline, 256->512->..->256
            num_convs=6,
            conv_channels=512,
            num_heads=8,
            feedforward_channels=2048,
            # Fig. 3(b): the keypoint decoder updates Q_I (False: "light")
            update_instance_query=True,
            instance_to_part=True,
            iteration='sim',
            dropout=0.0,
            # the official Decoder._reset_parameters
            xavier_reinit=True,
            dynamic_conv_cfg=dict(
                type='DynamicConv',
                feat_channels=64,
                act_cfg=dict(type='ReLU', inplace=True),
                norm_cfg=dict(type='LN'))),
        criterion=dict(
            type='QueryPoseCriterion',
            # Hungarian matching on boxes only: 2 focal + 5 L1 - 2 GIoU
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='FocalLossCost', weight=2.0),
                    dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
                    dict(type='IoUCost', iou_mode='giou', weight=2.0)
                ]),
            loss_cls=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=2.0),
            loss_bbox=dict(type='L1Loss', loss_weight=5.0),
            loss_iou=dict(type='GIoULoss', loss_weight=2.0),
            loss_keypoint=dict(type='QueryPoseRLELoss', loss_weight=1.0)),
        # the paper's official code (e249749, 2022-12): in training and at
        # test every query goes through the keypoint decoder, keeps its own
        # part queries and hands its refined Q_I to the next box decoder
        # (Fig. 3(b)); the official v1 regime (bf0814f) is
        # querypose_r50-fpn-matchedonly_*
        train_regime='all_queries',
        instance_query_flow='serial',
        # the official clamp: a box side grows at most 6250x per stage
        wh_ratio_clip=16 / 100000,
        growth_only_clip=True),
    # persons kept per image: every query
    test_cfg=dict(max_per_img=100, flip_test=False))
