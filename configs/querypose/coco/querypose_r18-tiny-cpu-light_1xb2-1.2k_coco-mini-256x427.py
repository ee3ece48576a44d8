# The light CPU quick start in the official v1 training regime (bf0814f,
# 'matched_only'): each stage decodes its matched queries only and hands the
# part queries on by position. As the light version of the official code
# (its released HRNet-W32/W48 models) the keypoint decoders do not update
# Q_I, so no refined Q_I of the matched queries alone reaches the next box
# decoder (see the full quick start).
# python tools/quickstart.py --config <this config>
_base_ = ['./querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py']

model = dict(
    head=dict(
        train_regime='matched_only',
        keypoint_decoder=dict(update_instance_query=False)))
