# Table 2(c), part query dimension d_p = 256 (the model: 128).
# Paper figure (not reproduced here): 64.7 AP (COCO val2017, R50, 1x).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(head=dict(part_dim=256))
