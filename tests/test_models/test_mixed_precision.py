"""Training under fp16 autocast (what --amp runs on CUDA, here on the CPU),
and a bf16 validation inside training."""
import pytest
import torch
from test_querypose_head import real_batch

from conftest import load_tool
from querypose_mm.testing import build_quickstart_model

AMP_INIT_SCALE = load_tool('tools/train.py').AMP_INIT_SCALE


def _losses(model, autocast: bool):
    batch = model.data_preprocessor(real_batch(), training=True)
    with torch.autocast('cpu', dtype=torch.float16, enabled=autocast):
        return model.loss(batch['inputs'], batch['data_samples'])


def test_fp16_step_of_the_small_config_is_finite_at_the_amp_scale():
    model = build_quickstart_model().train()
    losses = _losses(model, autocast=True)
    for name, loss in losses.items():
        assert loss.dtype == torch.float32 and torch.isfinite(loss), name
    # what AmpOptimWrapper's GradScaler back-propagates at its first step
    (sum(losses.values()) * AMP_INIT_SCALE).backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


def test_amp_overflow_is_a_skipped_step_not_an_error():
    """An fp16 overflow makes a stage non-finite: under autocast the
    GradScaler skips the step; outside autocast it is an error naming the
    stage."""
    model = build_quickstart_model().train()
    model.head.box_decoders[0].fc_cls.register_forward_hook(
        lambda module, args, out: out + float('inf'))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler('cpu', init_scale=AMP_INIT_SCALE)
    before = [param.detach().clone() for param in model.parameters()]
    loss = sum(_losses(model, autocast=True).values())
    assert not torch.isfinite(loss)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() == AMP_INIT_SCALE / 2  # the step was skipped
    for old, param in zip(before, model.parameters()):
        assert torch.equal(old, param)
    with pytest.raises(FloatingPointError, match='stage 0'):
        _losses(model, autocast=False)


def test_bf16_validation_leaves_the_trained_weights_layout():
    """bf16 inference makes the keypoint decoders' conv weights
    channels-last; back in training they are NCHW again (DDP's gradient
    buckets have their strides)."""
    model = build_quickstart_model().train()
    strides = {name: p.stride() for name, p in model.named_parameters()}
    model.test_cfg['precision'] = 'bf16'
    batch = model.data_preprocessor(real_batch((0, )), training=False)
    model.eval()
    with torch.no_grad():
        model.predict(batch['inputs'], batch['data_samples'])
    assert any(p.dim() == 4 and p.is_contiguous(
        memory_format=torch.channels_last) and not p.is_contiguous()
               for p in model.head.keypoint_decoders[0].parameters())
    model.train()
    assert {
        name: p.stride()
        for name, p in model.named_parameters()
    } == strides
