# QueryPose with ResNet-50 + FPN (P2-P5, 256 channels); 100 queries, 6 stages,
# 7 parts of 128 dimensions (paper §4.1; scheme (c) of Fig. 4).
model = dict(
    type='BottomupPoseEstimator',
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
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4),
    head=dict(
        type='QueryPoseHead',
        num_keypoints=17,
        num_queries=100,
        num_stages=6,
        in_channels=256,
        part_groups=[[0, 1, 2, 3, 4], [5, 6], [7, 9], [8, 10], [11, 12],
                     [13, 15], [14, 16]],
        part_dim=128,
        keypoint_decoder=dict(
            type='KeypointDecoderStage',
            update_instance_query=True,
            iteration='sim',
            spegm=dict(num_convs=6, conv_channels=512)),
        instance_query_flow='serial',
        # every query through the keypoint decoder in training, as at
        # inference (see QueryPoseHead: matched-only decoding leaks the
        # matching into the next stage's classifier in the serial flow)
        decode_matched_only=False,
        max_per_img=100),
    test_cfg=dict(flip_test=False))
