# QueryPose HRNet-W48 on CrowdPose (paper Table 6: 72.1 AP on the test set,
# not reproduced here), trained as the paper's official code (e249749). The
# paper gives no CrowdPose schedule: COCO's 280k (§4.1).
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_280k.py',
    '../../_base_/datasets/crowdpose_bottomup_querypose.py',
    '../../_base_/models/querypose_hrnet-w48-fpn.py',
]

# the keypoints and parts of CrowdPose (see the data set's base)
model = dict(
    head=dict(
        num_keypoints={{_base_.num_keypoints}},
        part_groups={{_base_.part_groups}}))

default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP', rule='greater'))
