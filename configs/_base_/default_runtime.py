default_scope = 'mmpose'

# Registers QueryPose's modules in mmpose's registries (and makes mmengine
# checkpoints loadable under torch >= 2.6, see querypose_mm/utils).
custom_imports = dict(imports=['querypose_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic writes: a job killed while saving never leaves a truncated
    # checkpoint or last_checkpoint (querypose_mm/engine)
    checkpoint=dict(
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=10000,
        max_keep_ckpts=3,
        backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False))
custom_hooks = [dict(type='SyncBuffersHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

# TensorBoard too (requirements/optional.txt, installed by the setup): put
# visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),
#                                 dict(type='TensorboardVisBackend')])
# in your config; the event files go to <work_dir>/<time>/vis_data.
vis_backends = [dict(type='LocalVisBackend')]
# draws only persons with a pose score >= pose_score_thr (the predictions
# keep all of them)
visualizer = dict(
    type='QueryPoseVisualizer',
    pose_score_thr=0.1,
    vis_backends=vis_backends,
    name='visualizer')
log_processor = dict(
    type='LogProcessor', window_size=50, by_epoch=False, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
backend_args = dict(backend='local')

# Queries without a matched person in a batch leave the keypoint decoder out
# of the graph.
find_unused_parameters = True
