# Table 2(a) 'None' = Table 2(b) '+ SPEGM': the new part embeddings replace the
# part queries at every stage (no iteration).
# Paper figure (not reproduced here): 63.8 AP (COCO val2017, R50, 1x).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(head=dict(keypoint_decoder=dict(iteration='none')))
