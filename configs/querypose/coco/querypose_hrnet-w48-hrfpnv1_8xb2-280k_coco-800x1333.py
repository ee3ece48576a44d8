# HRNet-W48 + HRFPN_v1, the neck of the official "querypose.hrnet48.100pro.3x"
# model, in the full version (the keypoint decoder updates Q_I; the official
# v1 yaml, LIGHT_VERSION False): the config of a full-version W48 checkpoint
# (tools/model_converters/querypose_official_to_mmpose.py picks it). The
# released W48 model is light: querypose_hrnet-w48-hrfpnv1-light_*.
# Schedule: 280k, lr x0.1 at 220k and 260k (the paper, §4.1, and the official
# yaml at both revisions).
_base_ = ['./querypose_hrnet-w48-fpn_8xb2-280k_coco-800x1333.py']

model = dict(
    backbone=dict(init_cfg=None),  # a converted checkpoint has it all
    neck=dict(
        _delete_=True,
        type='HRFPNv1',
        in_channels=[48, 96, 192, 384],
        out_channels=256),
    # detectron2 trains on COCO keypoints + 0.5 px
    head=dict(keypoint_offset=-0.5))
