# Table 2(d) scheme (a), Fig. 4(a): 17 parts, one per keypoint.
# Paper figure (not reproduced here): 64.7 AP (COCO val2017, R50, 1x).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(head=dict(part_groups=[[k] for k in range(17)]))
