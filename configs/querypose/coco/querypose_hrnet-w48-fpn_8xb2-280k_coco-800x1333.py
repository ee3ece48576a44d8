# QueryPose HRNet-W48 (paper Table 4: 73.6 AP, not reproduced here), trained
# as the paper's official code (e249749). Schedule: 280k, lr x0.1 at 220k,
# 260k (the paper, §4.1, and the official yaml at both revisions).
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_280k.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_hrnet-w48-fpn.py',
]

default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
