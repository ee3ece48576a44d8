_base_ = ['./querypose_hrnet-w32-fpn.py']

pretrained = ('https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/'
              'topdown_heatmap/coco/'
              'td-hm_hrnet-w48_8xb32-210e_coco-384x288-c161b7de_20220915.pth')
model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384))),
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=[48, 96, 192, 384]))
