# The light CPU quick start (official regime) with the paper's 100
# queries, to measure score-threshold decoding on trained weights
# (tools/analysis/fast_path.py, figures in docs/benchmark.md): without a Q_I
# update in the keypoint decoders the box path never reads the keypoints, so
# test_cfg.score_thr gives the same persons as decoding all 100 queries.
_base_ = ['./querypose_r18-tiny-cpu-light_1xb2-1.2k_coco-mini-256x427.py']

model = dict(
    head=dict(num_queries=100),
    # COCO's keypoint AP counts the best 20 persons of an image
    test_cfg=dict(max_per_img=20))
