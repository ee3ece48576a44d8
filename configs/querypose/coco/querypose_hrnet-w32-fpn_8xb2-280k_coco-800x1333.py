# QueryPose HRNet-W32 (paper Table 4: 72.4 AP, not reproduced here), trained
# as the paper's official code (e249749). Schedule: the paper's 280k (§4.1),
# lr x0.1 at 220k, 260k; the official yaml trains 90k at e249749 (x0.1 at
# 70k, 85k) and 280k at v1.
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_280k.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_hrnet-w32-fpn.py',
]

default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
