# The released official model "querypose.hrnet48.100pro.3x.yaml" (full
# version; HRNet-W48 + HRFPN_v1; 100 queries, 6 stages; 280k iterations), for
# its converted checkpoint
# (tools/model_converters/querypose_official_to_mmpose.py). Official README:
# 71.0 AP on COCO val2017 (their figure, not reproduced here).
_base_ = ['./querypose_hrnet-w48-fpn_8xb2-280k_coco-800x1333.py']

model = dict(
    backbone=dict(init_cfg=None),  # the converted checkpoint has it all
    neck=dict(
        _delete_=True,
        type='HRFPNv1',
        in_channels=[48, 96, 192, 384],
        out_channels=256),
    # the official regime, inference and clamp come from the model base;
    # detectron2 trains on COCO keypoints + 0.5 px
    head=dict(keypoint_offset=-0.5))
