# QueryPose R50 on the schedule of the official R50 yaml (e249749 and v1:
# 140k iterations of 16 images, lr x0.1 at 110k, 130k), the paper's "1x" of
# its ablations (Tables 1-3), trained as the paper's official code (e249749).
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_140k.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_r50-fpn.py',
]

default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
