# QueryPose R50 (paper Table 4: 68.7 AP on COCO val2017, not reproduced here),
# trained as the paper's official code (e249749; model base). Schedule: the
# paper's "2x" (§4.1): 280k iterations of 16 images, lr x0.1 at 220k, 260k;
# the official R50 yaml trains 140k: querypose_r50-fpn_8xb2-140k_*.
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/querypose_280k.py',
    '../../_base_/datasets/coco_bottomup_querypose.py',
    '../../_base_/models/querypose_r50-fpn.py',
]

default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
