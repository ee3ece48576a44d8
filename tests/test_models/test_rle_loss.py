import math

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
                term = (math.log(sigma[d]) - log_p +
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
              (pred - target).abs() / (math.sqrt(2) * sigma)) * weight[..., None]
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
