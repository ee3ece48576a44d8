# This project's variant of the R50 model's training (not the paper's): every
# query goes through the keypoint decoder in training, as at inference, and
# keeps its own part queries; Q_I flows serially (Fig. 3b) in training and
# at test. The SPEGM BatchNorm then sees mostly background RoIs, and a step
# costs several times the official regime's (docs/benchmark.md, "Training
# step").
_base_ = ['./querypose_r50-fpn_8xb2-280k_coco-800x1333.py']

model = dict(
    head=dict(train_regime='all_queries', instance_query_flow='serial'))
