# The R50 model in the training regime of the official code's "v1" revision
# (bf0814f, 2023-05, the repository's HEAD), not the paper's (e249749): each
# stage is matched right after its box decoder and only its matched queries
# go through the keypoint decoder; their refined Q_I goes on to the next box
# decoder in training only, and the part queries pass on by position among
# the matched queries. About 4x cheaper a step than the paper's regime
# (docs/benchmark.md, "Training step"), but in this full version the next
# stage's classifier can read which queries were matched (the head warns at
# build; README, "Training regimes").
_base_ = ['./querypose_r50-fpn_8xb2-280k_coco-800x1333.py']

model = dict(
    head=dict(
        train_regime='matched_only',
        instance_query_flow=dict(
            _delete_=True, train='serial', test='box_only')))
