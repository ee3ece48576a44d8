from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmpose.registry import MODELS


@MODELS.register_module()
class HRFPNv1(BaseModule):
    """The HRNet neck of the official HRNet-W48 QueryPose model ("HRFPN_v1").

    Like mmdet's ``HRFPN``, the branches are upsampled to the first one's
    resolution, concatenated and reduced by a 1x1 conv to P2; each further
    level is the previous one average-pooled by 2 plus a 1x1 lateral conv of
    the branch of that stride (mmdet's HRFPN pools P2 by 2^i and has no
    laterals). A 3x3 conv per level gives the outputs.

    Args:
        in_channels (list[int]): Channels of the HRNet branches, from stride
            4 to 32.
        out_channels (int): Channels of every output level.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')
    ) -> None:
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.reduction_conv = ConvModule(
            sum(in_channels), out_channels, kernel_size=1, act_cfg=None)
        # the first branch enters through the reduction conv only
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, kernel_size=1, act_cfg=None)
            for c in in_channels[1:])
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, act_cfg=None)
            for _ in in_channels)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Branches (B, C_i, H / 2^i, W / 2^i) -> levels (B, out, ...)."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'HRFPNv1 expects {len(self.in_channels)} '
                             f'branches, got {len(inputs)}')
        upsampled: List[Tensor] = [inputs[0]] + [
            F.interpolate(x, scale_factor=2**i, mode='bilinear')
            for i, x in enumerate(inputs[1:], 1)
        ]
        level = self.reduction_conv(torch.cat(upsampled, dim=1))
        outputs = [self.fpn_convs[0](level)]
        for i, lateral in enumerate(self.lateral_convs, 1):
            level = F.avg_pool2d(level, 2, stride=2) + lateral(inputs[i])
            outputs.append(self.fpn_convs[i](level))
        return tuple(outputs)
