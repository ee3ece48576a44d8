# The CPU quick start in the official training regime: each stage decodes
# its matched queries only and hands the part queries on by position. As the
# official code's light version (its released HRNet-W32 model) the keypoint
# decoders do not update Q_I, so no refined Q_I of the matched queries
# reaches the next box decoder in training only (see the full quick start).
# python tools/quickstart.py --config <this config>
_base_ = ['./querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py']

model = dict(
    head=dict(
        train_regime='official',
        keypoint_decoder=dict(update_instance_query=False)))
