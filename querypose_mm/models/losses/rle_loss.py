import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmpose.models.losses import RLELoss
from mmpose.registry import MODELS


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
            log_phi = self.flow_model.log_prob(error.reshape(-1, 2)).reshape(
                n, k, 1)
            nf_loss = log_sigma - log_phi
            log_norm = 0.5 * math.log(2 * math.pi)
            loss_q = log_sigma + log_norm + residual.abs() / (
                math.sqrt(2) * sigma + 1e-9)
            loss = (nf_loss + loss_q) * target_weight.float()[..., None]
        if avg_factor is None:
            avg_factor = max(n * k, 1)
        return self.loss_weight * loss.sum() / avg_factor
