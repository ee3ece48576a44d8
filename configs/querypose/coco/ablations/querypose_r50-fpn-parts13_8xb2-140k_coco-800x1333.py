# Table 2(d) scheme (b), Fig. 4(b): 13 parts, the face as one, every other
# keypoint alone.
# Paper figure (not reproduced here): 64.6 AP (COCO val2017, R50, 1x).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(
    head=dict(part_groups=[[0, 1, 2, 3, 4]] + [[k] for k in range(5, 17)]))
