_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_140k.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_r50-fpn.py',
]

default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
