# QueryPose R101: not in the paper's tables; trained as the paper's official
# code (e249749) on the paper's 280k schedule (§4.1).
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_280k.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_r101-fpn.py',
]

default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
