# Table 2(a) 'Concatenation': Q_P^s = Linear([E_P^s, Q_P^{s-1}]) instead of
# SIM.
# Paper figure (not reproduced here): 64.1 AP (COCO val2017, R50, 1x).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(head=dict(keypoint_decoder=dict(iteration='concat')))
