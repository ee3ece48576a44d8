# HRNet-W32 + HRFPN, the neck of the official "querypose.hrnet32.100pro.3x"
# model, in the full version (the keypoint decoder updates Q_I): the config
# of a full-version W32 checkpoint of the official code
# (tools/model_converters/querypose_official_to_mmpose.py picks it). The
# released W32 model is light: querypose_hrnet-w32-hrfpn-light_*.
# Schedule: the paper's 280k (§4.1); the official yaml trains 90k (lr x0.1 at
# 70k, 85k) at e249749 and 280k at v1.
_base_ = ['./querypose_hrnet-w32-fpn_8xb2-280k_coco-800x1333.py']

model = dict(
    backbone=dict(init_cfg=None),  # a converted checkpoint has it all
    neck=dict(
        _delete_=True,
        # the official HRFPN is mmdet's with 4 levels (its 5th conv unused)
        type='mmdet.HRFPN',
        in_channels=[32, 64, 128, 256],
        out_channels=256,
        num_outs=4),
    # detectron2 trains on COCO keypoints + 0.5 px
    head=dict(keypoint_offset=-0.5))
