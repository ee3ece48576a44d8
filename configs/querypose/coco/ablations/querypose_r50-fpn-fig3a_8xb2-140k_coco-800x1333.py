# Table 3, Fig. 3(a): the instance query Q_I iterates across the box decoders
# only, in training and at test; the keypoint decoder's Q_I update stays
# inside its stage (the model: Fig. 3(b), serial).
# Paper figure (not reproduced here): 55.3 AP box, 64.1 AP keypoints (COCO
# val2017, R50, 1x).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(head=dict(instance_query_flow='box_only'))
