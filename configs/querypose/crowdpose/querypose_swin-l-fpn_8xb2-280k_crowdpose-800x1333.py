# QueryPose Swin-L on CrowdPose (paper Table 6: 72.7 AP on the test set, not
# reproduced here), trained as the paper's official code (e249749). The paper
# gives no CrowdPose schedule: COCO's 280k (§4.1).
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_280k.py',
    '../../_base_/datasets/crowdpose_bottomup_querypose.py',
    '../../_base_/models/querypose_swin-l-fpn.py',
]

# CrowdPose's 14 keypoints (l/r shoulder 0,1, l/r elbow 2,3, l/r wrist 4,5,
# l/r hip 6,7, l/r knee 8,9, l/r ankle 10,11, head top 12, neck 13) in the
# spirit of the paper's 7 rigid parts; neither the paper nor the official code
# gives a CrowdPose split.
model = dict(
    head=dict(
        num_keypoints=14,
        part_groups=[[12, 13], [0, 1], [2, 4], [3, 5], [6, 7], [8, 10],
                     [9, 11]]))

default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP', rule='greater'))
