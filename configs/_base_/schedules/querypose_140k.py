# The official R-50 schedule (paper's ablations, "1x"): 140k iterations of
# 16 images, lr x0.1 at 110k and 130k.
max_iters = 140000
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=10000)
val_cfg = dict()
test_cfg = dict()

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2.5e-5, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    # the RLE flow learns 10x faster than the rest (paper §4.1)
    paramwise_cfg=dict(custom_keys={'flow_model': dict(lr_mult=10.0)}))

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=1000),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[110000, 130000],
        gamma=0.1)
]

# lr 2.5e-5 is for 16 images per iteration (8 GPUs x 2); enable with
# --auto-scale-lr to scale it to another total batch size.
auto_scale_lr = dict(base_batch_size=16, enable=False)
