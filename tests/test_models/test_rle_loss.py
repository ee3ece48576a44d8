import math

import pytest
import torch

from mmpose.models.losses import RLELoss
from querypose_mm.models.losses import QueryPoseRLELoss


def _case():
    torch.manual_seed(0)
    n, k = 3, 4
    pred = torch.rand(n, k, 2) - 0.5
    sigma_logits = torch.randn(n, k, 2)
    target = torch.rand(n, k, 2) - 0.5
    weight = torch.tensor([[1., 1., 0., 1.], [1., 0., 0., 1.],
                           [1., 1., 1., 1.]])
    return pred, sigma_logits, target, weight


def test_value_equals_official_formula():
    pred, sigma_logits, target, weight = _case()
    loss_fn = QueryPoseRLELoss()
    num_gt, k = 3, 4
    loss = loss_fn(pred, sigma_logits, target, weight, avg_factor=num_gt * k)

    # official, coordinate by coordinate:
    # log σ - log p((t-μ)/σ) + log(σ√(2π)) + |t-μ|/(√2σ)
    total = 0.0
    pred, sigma_logits = pred.detach(), sigma_logits.detach()
    for i in range(3):
        for j in range(4):
            sigma = sigma_logits[i, j].sigmoid()
            error = (pred[i, j] - target[i, j]) / (sigma + 1e-9)
            log_p = loss_fn.flow_model.log_prob(error[None])[0]
            for d in range(2):
                term = (
                    math.log(sigma[d]) - log_p +
                    math.log(sigma[d] * math.sqrt(2 * math.pi)) +
                    abs(target[i, j, d] - pred[i, j, d]) /
                    (math.sqrt(2) * sigma[d]))
                total += float(term) * float(weight[i, j])
    assert abs(loss.item() - total / (num_gt * k)) < 1e-5


def test_flow_term_is_mmposes():
    pred, sigma_logits, target, weight = _case()
    ours = QueryPoseRLELoss()
    mmpose_nf = RLELoss(
        use_target_weight=True, size_average=False, residual=False)
    mmpose_nf.flow_model.load_state_dict(ours.flow_model.state_dict())
    sigma = sigma_logits.sigmoid()
    q_term = (torch.log(sigma * math.sqrt(2 * math.pi)) +
              (pred - target).abs() /
              (math.sqrt(2) * sigma)) * weight[..., None]
    expected = mmpose_nf(pred, sigma_logits, target,
                         weight[..., None]) + q_term.sum()
    loss = ours(pred, sigma_logits, target, weight, avg_factor=1.0)
    torch.testing.assert_close(loss, expected)


def test_loss_weight_zero_weights_and_gradients():
    pred, sigma_logits, target, weight = _case()
    pred.requires_grad_(True)
    loss = QueryPoseRLELoss(loss_weight=2.0)(
        pred, sigma_logits, target, torch.zeros_like(weight), avg_factor=12)
    assert loss.item() == 0.0
    loss = QueryPoseRLELoss()(pred, sigma_logits, target, weight, 12)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[weight == 0] == 0).all()
    assert (pred.grad[weight == 1].abs().sum(-1) > 0).all()


@pytest.mark.parametrize('dtype', [None, torch.bfloat16, torch.float16])
def test_extreme_inputs_stay_finite_under_autocast(dtype):
    """σ logits of ±200 (σ rounds to 0 or 1), errors of 1e4, fp16/bf16."""
    torch.manual_seed(0)
    loss_fn = QueryPoseRLELoss()
    # the predictions come out of a linear, as in the head, so autocast
    # hands the loss low-precision tensors
    head = torch.nn.Linear(4, 4 * 2 * 2)
    features = torch.randn(4, 4)
    scale = torch.tensor([1.0, 1e4, -1e4, 0.5])[:, None, None]
    logits_shift = torch.tensor([0.0, -200.0, 200.0, -60.0])[:, None, None]
    target = torch.zeros(4, 4, 2)
    weight = torch.ones(4, 4)
    with torch.autocast(
            'cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
        out = head(features).view(4, 4, 2, 2)
        pred = out[..., 0] * scale.to(out.dtype)
        sigma_logits = out[..., 1] + logits_shift.to(out.dtype)
        if dtype is not None:
            assert pred.dtype == dtype
        loss = loss_fn(pred, sigma_logits, target, weight)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    params = list(head.parameters()) + list(loss_fn.flow_model.parameters())
    optimizer = torch.optim.SGD(params, lr=0.1)
    # fp16 training goes through a loss scaler (mmengine's AmpOptimWrapper
    # holds one): d loss / d μ = 1 / (√2 σ) reaches 1e9 at σ -> 0, beyond
    # fp16's 65504, and the scaler must skip that step, not apply it
    scaler = torch.amp.GradScaler('cpu', enabled=dtype == torch.float16)
    scaler.scale(loss).backward()
    for param in loss_fn.flow_model.parameters():
        assert torch.isfinite(param.grad).all()  # the flow runs in float32
    if dtype != torch.float16:
        for param in head.parameters():
            assert torch.isfinite(param.grad).all()
    scale_before = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    for param in params:
        assert torch.isfinite(param).all()
    if dtype == torch.float16:
        assert scaler.get_scale() < scale_before  # overflow seen, step skipped


def test_float32_result_unchanged_by_autocast_guard():
    """bf16 autocast only rounds the inputs; the loss itself is float32."""
    pred, sigma_logits, target, weight = _case()
    loss_fn = QueryPoseRLELoss()
    full = loss_fn(pred, sigma_logits, target, weight)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = loss_fn(pred.bfloat16(), sigma_logits.bfloat16(), target,
                        weight)
    rounded = loss_fn(pred.bfloat16().float(),
                      sigma_logits.bfloat16().float(), target, weight)
    torch.testing.assert_close(mixed, rounded)
    assert abs(mixed.item() - full.item()) < 0.05 * abs(full.item()) + 0.05


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_flow_log_prob_is_mmposes_bit_for_bit(dtype):
    """Without mmpose's validated prior (host syncs on a GPU), the same
    numbers."""
    from querypose_mm.models.losses.rle_loss import flow_log_prob
    flow = QueryPoseRLELoss().flow_model.to(dtype)
    x = torch.randn(
        500, 2, generator=torch.Generator().manual_seed(0), dtype=dtype) * 3
    assert torch.equal(flow_log_prob(flow, x), flow.log_prob(x))
