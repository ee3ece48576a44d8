# The official code's light version (LIGHT_VERSION): no Q_I update in the
# keypoint decoder, so no DynamicConv + FFN there (188.7 M instead of 322.6 M
# parameters); not in the paper's tables.
# Paper figure (not reproduced here): none (the official README reports light
# HRNet models only).
_base_ = ['../querypose_r50-fpn_8xb2-140k_coco-800x1333.py']

model = dict(head=dict(keypoint_decoder=dict(update_instance_query=False)))
