from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule, normal_init
from torch import Tensor

from mmpose.registry import MODELS


@MODELS.register_module()
class SpatialPartEmbedding(BaseModule):
    """Spatial Part Embedding Generation Module (SPEGM, QueryPose §3.2).

    A stack of 3x3 conv + ReLU refines the pose RoI; a 4x4 stride-2 deconv +
    BN + ReLU doubles its resolution; a 3x3 conv squeezes it to one spatial
    attention map per part, softmax-normalised over all positions; each part
    embedding is the attention-weighted sum of the upsampled RoI features,
    projected to ``part_dim``: ``E_P = Linear(A ⊗ RoIᵀ)``.

    The conv stack is the one of the paper's baseline ("stacked 3x3 conv"),
    so :meth:`spegm_proper_parameters` counts only the deconv, the attention
    conv and the projection, which is the paper's 1.1 M at its settings.

    Args:
        num_parts (int): Number of parts M (attention maps).
        in_channels (int): Channels of the pose RoI. Defaults to 256.
        part_dim (int): Dimension d_p of a part embedding. Defaults to 128.
        num_convs (int): Number of 3x3 convs before the deconv. Defaults to 6.
        conv_channels (int): Channels inside the conv stack; the last conv
            returns to ``in_channels``. Defaults to 512.
    """

    def __init__(self,
                 num_parts: int,
                 in_channels: int = 256,
                 part_dim: int = 128,
                 num_convs: int = 6,
                 conv_channels: int = 512,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.num_parts = num_parts
        self.in_channels = in_channels
        self.part_dim = part_dim
        layers = []
        for i in range(num_convs):
            c_in = in_channels if i == 0 else conv_channels
            c_out = in_channels if i == num_convs - 1 else conv_channels
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(True)]
        self.conv_stack = nn.Sequential(*layers)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(
                in_channels, in_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(in_channels), nn.ReLU(True))
        self.part_attention = nn.Conv2d(in_channels, num_parts, 3, padding=1)
        self.embed = nn.Linear(in_channels, part_dim)

    def init_weights(self) -> None:
        super().init_weights()
        for m in self.conv_stack.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
        nn.init.kaiming_normal_(
            self.deconv[0].weight, mode='fan_out', nonlinearity='relu')
        normal_init(self.part_attention, std=0.01)

    def spegm_proper_parameters(self) -> int:
        """Parameters of the deconv, attention conv and projection."""
        modules = (self.deconv, self.part_attention, self.embed)
        return sum(p.numel() for m in modules for p in m.parameters())

    def forward(self, pose_rois: Tensor) -> Tuple[Tensor, Tensor]:
        """Embed each part of each RoI.

        Args:
            pose_rois (Tensor): RoI features, shape (n, C, H, W).

        Returns:
            tuple[Tensor, Tensor]:

            - part_embeddings: shape (n, M, part_dim).
            - attention: softmax attention maps, shape (n, M, 2H, 2W); each
              map sums to 1 over its positions.
        """
        feats = self.deconv(self.conv_stack(pose_rois))
        n, c, h, w = feats.shape
        logits = self.part_attention(feats).flatten(2)
        attention = logits.softmax(dim=-1)
        pooled = torch.bmm(attention, feats.flatten(2).transpose(1, 2))
        return self.embed(pooled), attention.view(n, self.num_parts, h, w)
