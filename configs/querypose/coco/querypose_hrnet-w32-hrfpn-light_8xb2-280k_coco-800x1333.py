# The released official model "HRNet32_100pro_3x" (querypose.hrnet32.100pro.3x
# .yaml, LIGHT_VERSION True: no Q_I update in the keypoint decoder;
# HRNet-W32 + HRFPN; 100 queries, 6 stages), for its converted checkpoint
# (tools/model_converters/querypose_official_to_mmpose.py). Official README:
# 69.8 AP on COCO val2017 (their figure, not reproduced here).
_base_ = ['./querypose_hrnet-w32-hrfpn_8xb2-280k_coco-800x1333.py']

model = dict(head=dict(keypoint_decoder=dict(update_instance_query=False)))
