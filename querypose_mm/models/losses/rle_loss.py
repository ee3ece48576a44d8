import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import MultivariateNormal

from mmpose.models.losses import RLELoss
from mmpose.models.utils.realnvp import RealNVP
from mmpose.registry import MODELS


def flow_log_prob(flow: RealNVP, x: Tensor) -> Tensor:
    """``flow.log_prob(x)`` without a host sync.

    mmpose's ``RealNVP.prior`` builds ``MultivariateNormal(loc, cov)`` on
    every call, which validates its arguments and checks the Cholesky
    factorisation, each a device-to-host sync (about five a stage on a GPU).
    The same distribution built from ``cholesky_ex``'s factor (which reports
    errors instead of checking them) without validation gives the same
    numbers.

    Args:
        flow (RealNVP): The flow, with its ``loc`` (2,) and ``cov`` (2, 2)
            prior buffers.
        x (Tensor): Samples, (n, 2).

    Returns:
        Tensor: Log-density of each sample, (n,).
    """
    z, log_det = flow.backward_p(x)
    prior = MultivariateNormal(
        flow.loc,
        scale_tril=torch.linalg.cholesky_ex(flow.cov).L,
        validate_args=False)
    return prior.log_prob(z) + log_det


@MODELS.register_module()
class QueryPoseRLELoss(RLELoss):
    """RLE with the scale and residual term of the official QueryPose code.

    mmpose's :class:`RLELoss` (whose RealNVP flow and sigmoid-sigma
    parameterisation this class reuses) uses the Laplace term
    ``log 2σ + |t - μ|/σ`` and divides by the number of instances, which is
    about K times the official scale. Per coordinate, QueryPose uses::

        log σ - log p_flow((t - μ)/σ) + log(σ√(2π)) + |t - μ| / (√2 σ)

    summed over coordinates, keypoints and matched instances and divided by
    ``avg_factor`` (the number of GT persons times K).

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__(
            use_target_weight=True, size_average=False, residual=True)
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                sigma_logits: Tensor,
                target: Tensor,
                target_weight: Tensor,
                avg_factor: Optional[float] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Predicted box-relative keypoints μ, (n, K, 2).
            sigma_logits (Tensor): σ before sigmoid, (n, K, 2).
            target (Tensor): Box-relative targets t, (n, K, 2).
            target_weight (Tensor): 0/1 weight per keypoint, (n, K).
            avg_factor (float, optional): Normaliser; ``n * K`` if None.

        Returns:
            Tensor: Scalar loss.
        """
        n, k = target.shape[:2]
        # In float32 whatever the autocast state: in fp16 the 1e-9 below is
        # 0, sigmoid underflows to 0 below a logit of about -17 and the
        # flow's linears overflow on large errors (inf, then NaN).
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred, target = pred.float(), target.float()
            sigma_logits = sigma_logits.float()
            sigma = sigma_logits.sigmoid()
            # log σ = logsigmoid: finite even where σ rounds to 0
            log_sigma = F.logsigmoid(sigma_logits)
            residual = pred - target
            error = residual / (sigma + 1e-9)
            log_phi = flow_log_prob(self.flow_model,
                                    error.reshape(-1, 2)).reshape(n, k, 1)
            nf_loss = log_sigma - log_phi
            log_norm = 0.5 * math.log(2 * math.pi)
            loss_q = log_sigma + log_norm + residual.abs() / (
                math.sqrt(2) * sigma + 1e-9)
            loss = (nf_loss + loss_q) * target_weight.float()[..., None]
        if avg_factor is None:
            avg_factor = max(n * k, 1)
        return self.loss_weight * loss.sum() / avg_factor
