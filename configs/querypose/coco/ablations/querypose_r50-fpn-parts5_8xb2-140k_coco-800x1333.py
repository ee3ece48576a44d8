# Table 2(d) scheme (d), Fig. 4(d): 5 parts, the face and four limbs.
# Paper figure (not reproduced here): 64.5 AP (COCO val2017, R50, 1x).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(
    head=dict(part_groups=[[0, 1, 2, 3, 4], [5, 7, 9], [6, 8, 10],
                           [11, 13, 15], [12, 14, 16]]))
