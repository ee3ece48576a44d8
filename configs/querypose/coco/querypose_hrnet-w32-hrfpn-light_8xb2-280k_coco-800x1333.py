# The released official model "querypose.hrnet32.100pro.3x.yaml" (light
# version: no Q_I update in the keypoint decoder; HRNet-W32 + HRFPN; 100
# queries, 6 stages; 280k iterations), for its converted checkpoint
# (tools/model_converters/querypose_official_to_mmpose.py). Official README:
# 69.8 AP on COCO val2017 (their figure, not reproduced here).
_base_ = ['./querypose_hrnet-w32-fpn_8xb2-280k_coco-800x1333.py']

model = dict(
    backbone=dict(init_cfg=None),  # the converted checkpoint has it all
    neck=dict(
        _delete_=True,
        # the official HRFPN is mmdet's with 4 levels (its 5th conv unused)
        type='mmdet.HRFPN',
        in_channels=[32, 64, 128, 256],
        out_channels=256,
        num_outs=4),
    head=dict(
        keypoint_decoder=dict(update_instance_query=False),
        # detectron2 trains on COCO keypoints + 0.5 px
        keypoint_offset=-0.5))
