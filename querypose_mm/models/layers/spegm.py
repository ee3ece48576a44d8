from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule, normal_init
from torch import Tensor

from mmpose.registry import MODELS


@MODELS.register_module()
class SpatialPartEmbedding(BaseModule):
    """Spatial Part Embedding Generation Module (SPEGM, QueryPose §3.2).

    A 4x4 stride-2 deconv + BN + ReLU doubles the resolution of the (conv
    stack-refined) pose RoI; a 3x3 conv squeezes it to one spatial attention
    map per part, softmax-normalised over all positions; each part embedding
    is the attention-weighted sum of the upsampled RoI features, projected
    to ``part_dim``: ``E_P = Linear(A ⊗ RoIᵀ)``.

    The stack of 3x3 convs before it is the paper's baseline ("stacked 3x3
    conv") and belongs to :class:`KeypointDecoderStage`, so the parameters
    here are the paper's 1.1 M at its settings (C = 256, d_p = 128, M = 7).

    Args:
        num_parts (int): Number of parts M (attention maps).
        in_channels (int): Channels C of the RoI features.
        part_dim (int): Dimension d_p of a part embedding.
    """

    def __init__(self,
                 num_parts: int,
                 in_channels: int,
                 part_dim: int,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.num_parts = num_parts
        self.in_channels = in_channels
        self.part_dim = part_dim
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(
                in_channels, in_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(in_channels), nn.ReLU(True))
        self.part_attention = nn.Conv2d(in_channels, num_parts, 3, padding=1)
        self.embed = nn.Linear(in_channels, part_dim)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.kaiming_normal_(
            self.deconv[0].weight, mode='fan_out', nonlinearity='relu')
        normal_init(self.part_attention, std=0.01)

    def forward(self, roi_feats: Tensor) -> Tuple[Tensor, Tensor]:
        """Embed each part of each RoI.

        Args:
            roi_feats (Tensor): RoI features, shape (n, C, H, W).

        Returns:
            tuple[Tensor, Tensor]:

            - part_embeddings: shape (n, M, part_dim).
            - attention: softmax attention maps, shape (n, M, 2H, 2W); each
              map sums to 1 over its positions.
        """
        feats = self.deconv(roi_feats)
        n, c, h, w = feats.shape
        logits = self.part_attention(feats).flatten(2)
        attention = logits.softmax(dim=-1)
        pooled = torch.bmm(attention, feats.flatten(2).transpose(1, 2))
        return self.embed(pooled), attention.view(n, self.num_parts, h, w)
