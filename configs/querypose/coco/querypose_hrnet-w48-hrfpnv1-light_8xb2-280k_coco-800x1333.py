# The released official model "HRNet48_100pro_3x" (querypose.hrnet48.100pro.3x
# .yaml at e249749, whose base sets LIGHT_VERSION True; the official README of
# then calls both released models light: no Q_I update in the keypoint
# decoder; HRNet-W48 + HRFPN_v1; 100 queries, 6 stages), for its converted
# checkpoint (tools/model_converters/querypose_official_to_mmpose.py).
# Official README: 71.0 AP on COCO val2017 (their figure, not reproduced
# here).
_base_ = ['./querypose_hrnet-w48-hrfpnv1_8xb2-280k_coco-800x1333.py']

model = dict(head=dict(keypoint_decoder=dict(update_instance_query=False)))
