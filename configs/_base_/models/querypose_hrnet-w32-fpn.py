_base_ = ['./querypose_r50-fpn.py']

# HRNet starts from the COCO top-down heatmap model (384x288); the paper
# reports +1.5 AP over ImageNet weights for this heatmap pre-training.
pretrained = ('https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/'
              'topdown_heatmap/coco/'
              'td-hm_hrnet-w32_8xb64-210e_coco-384x288-ca5956af_20220909.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(32, 64)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(32, 64, 128)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(32, 64, 128, 256),
                multiscale_output=True)),
        init_cfg=dict(
            type='Pretrained', prefix='backbone.', checkpoint=pretrained)),
    neck=dict(in_channels=[32, 64, 128, 256]))
