_base_ = ['./querypose_140k.py']

# The paper's "2x": 280k iterations, lr x0.1 at 220k and 260k.
max_iters = 280000
train_cfg = dict(max_iters=max_iters, val_interval=20000)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=1000),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[220000, 260000],
        gamma=0.1)
]
