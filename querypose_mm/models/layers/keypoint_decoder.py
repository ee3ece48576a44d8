from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn.bricks.transformer import FFN
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModule
from torch import Tensor

from mmpose.registry import MODELS
from ..utils import mmdet_cfg
from .sim import SelectiveIteration
from .spegm import SpatialPartEmbedding

# Scheme (c) of the paper's Fig. 4 (7 rigid parts), COCO keypoint order.
COCO_PARTS_7 = [[0, 1, 2, 3, 4], [5, 6], [7, 9], [8, 10], [11, 12], [13, 15],
                [14, 16]]


def check_part_groups(part_groups: Sequence[Sequence[int]],
                      num_keypoints: int) -> None:
    """Raise a clear error unless every keypoint is in exactly one part."""
    flat = [int(k) for group in part_groups for k in group]
    if any(len(group) == 0 for group in part_groups):
        raise ValueError(f'part_groups has an empty part: {part_groups}')
    missing = sorted(set(range(num_keypoints)) - set(flat))
    repeated = sorted({k for k in flat if flat.count(k) > 1})
    outside = sorted({k for k in flat if not 0 <= k < num_keypoints})
    if missing or repeated or outside:
        raise ValueError(
            f'part_groups must cover keypoints 0..{num_keypoints - 1} exactly '
            f'once (num_keypoints={num_keypoints}); missing {missing}, '
            f'repeated {repeated}, out of range {outside}. Got {part_groups}.')


class PartwiseLinear(nn.Module):
    """One non-shared linear per part, outputs in dataset keypoint order.

    Equivalent to ``M`` separate ``Linear(d_p -> dim_per_keypoint * |part|)``
    layers (each part's outputs see only that part's query), computed in one
    einsum: keypoint ``k`` reads the query of its part.

    Args:
        part_groups (list[list[int]]): Keypoint indices of each part.
        part_dim (int): Input dimension d_p.
        dim_per_keypoint (int): Outputs per keypoint. Defaults to 2.
        normalize_input (bool): Divide the input by its L2 norm first, as
            RLE's regression layer does. Defaults to False.
        init_gain (float, optional): Xavier-uniform gain of the weights;
            ``None`` keeps the default init of ``nn.Linear``.
    """

    def __init__(self,
                 part_groups: Sequence[Sequence[int]],
                 part_dim: int,
                 dim_per_keypoint: int = 2,
                 normalize_input: bool = False,
                 init_gain: Optional[float] = None) -> None:
        super().__init__()
        num_keypoints = sum(len(g) for g in part_groups)
        part_of_keypoint = torch.empty(num_keypoints, dtype=torch.long)
        for part, group in enumerate(part_groups):
            part_of_keypoint[list(group)] = part
        self.register_buffer('part_of_keypoint', part_of_keypoint, False)
        self.normalize_input = normalize_input
        self.weight = nn.Parameter(
            torch.empty(num_keypoints, part_dim, dim_per_keypoint))
        self.bias = nn.Parameter(torch.zeros(num_keypoints, dim_per_keypoint))
        for k in range(num_keypoints):
            if init_gain is None:
                nn.init.kaiming_uniform_(self.weight[k].T, a=5**0.5)
            else:
                nn.init.xavier_uniform_(self.weight[k].T, gain=init_gain)

    def forward(self, part_queries: Tensor) -> Tensor:
        """Map (n, M, d_p) part queries to (n, K, dim_per_keypoint)."""
        if self.normalize_input:
            part_queries = part_queries / part_queries.norm(
                dim=-1, keepdim=True).clamp_min(1e-6)
        per_keypoint = part_queries[:, self.part_of_keypoint]
        return torch.einsum('nkd,kdo->nko', per_keypoint,
                            self.weight) + self.bias


@MODELS.register_module()
class KeypointDecoderStage(BaseModule):
    """One keypoint-decoder stage of QueryPose (eq. 2 and Fig. 3).

    pose RoI (14x14 on P2) -> [Q_I update: DynamicConv + FFN] -> SPEGM (+ a
    per-part projection of Q_I) -> SIM with the previous part queries ->
    MHA over the parts of each person + FFN -> per-part coordinate and
    sigma linears.

    Args:
        part_groups (list[list[int]]): Keypoint indices of each part, every
            keypoint exactly once. Defaults to the paper's 7-part scheme (c)
            for COCO.
        num_keypoints (int): K. Defaults to 17.
        in_channels (int): Channels of the RoI and of Q_I. Defaults to 256.
        part_dim (int): d_p. Defaults to 128.
        roi_size (int): Side of the pose RoI. Defaults to 14.
        update_instance_query (bool): Fig. 3(b): Q_I is refined here with its
            own DynamicConv + FFN and handed to the next box decoder. False is
            Fig. 3(a) and the "light" version. Defaults to True.
        instance_to_part (bool): Add ``Linear_i(Q_I)`` to the i-th part
            embedding, as the official code does. Defaults to True.
        spegm (dict): Extra arguments of :class:`SpatialPartEmbedding`.
        iteration (str): Mode of :class:`SelectiveIteration`.
            Defaults to ``'sim'``.
        num_heads (int): Heads of the part attention. Defaults to 8.
        feedforward_channels (int): Hidden width of the FFNs. Defaults to 2048.
        dropout (float): Dropout in attention/FFN. Defaults to 0.
        dynamic_conv_cfg (dict): mmdet ``DynamicConv`` config for the Q_I
            update.
    """

    def __init__(self,
                 part_groups: Sequence[Sequence[int]] = COCO_PARTS_7,
                 num_keypoints: int = 17,
                 in_channels: int = 256,
                 part_dim: int = 128,
                 roi_size: int = 14,
                 update_instance_query: bool = True,
                 instance_to_part: bool = True,
                 spegm: Optional[Dict] = None,
                 iteration: str = 'sim',
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.0,
                 dynamic_conv_cfg: Optional[Dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        check_part_groups(part_groups, num_keypoints)
        self.part_groups: List[List[int]] = [list(g) for g in part_groups]
        self.num_parts = len(part_groups)
        self.part_dim = part_dim
        self.in_channels = in_channels
        self.update_instance_query = update_instance_query
        if update_instance_query:
            conv_cfg = dict(
                type='DynamicConv',
                in_channels=in_channels,
                feat_channels=64,
                out_channels=in_channels,
                input_feat_shape=roi_size,
                act_cfg=dict(type='ReLU', inplace=True),
                norm_cfg=dict(type='LN'))
            conv_cfg.update(dynamic_conv_cfg or {})
            self.instance_conv = MMDET_MODELS.build(mmdet_cfg(conv_cfg))
            self.instance_conv_norm = nn.LayerNorm(in_channels)
            self.instance_ffn = FFN(
                in_channels, feedforward_channels, ffn_drop=dropout)
            self.instance_ffn_norm = nn.LayerNorm(in_channels)
        self.instance_to_part = nn.Linear(
            in_channels, self.num_parts * part_dim) if instance_to_part else None
        self.spegm = SpatialPartEmbedding(
            self.num_parts, in_channels, part_dim, **(spegm or {}))
        self.sim = SelectiveIteration(part_dim, iteration)
        self.part_attention = nn.MultiheadAttention(
            part_dim, num_heads, dropout=dropout, batch_first=True)
        self.part_attention_norm = nn.LayerNorm(part_dim)
        self.part_ffn = FFN(part_dim, feedforward_channels, ffn_drop=dropout)
        self.part_ffn_norm = nn.LayerNorm(part_dim)
        self.coord_head = PartwiseLinear(
            part_groups, part_dim, normalize_input=True, init_gain=0.01)
        self.sigma_head = PartwiseLinear(part_groups, part_dim)

    def forward(self, pose_rois: Tensor, instance_queries: Tensor,
                part_queries: Tensor) -> Dict[str, Tensor]:
        """Decode keypoints of n persons.

        Args:
            pose_rois (Tensor): Pose RoI features, shape (n, C, S, S).
            instance_queries (Tensor): Q_I, shape (n, C).
            part_queries (Tensor): Q_P^{s-1}, shape (n, M, d_p).

        Returns:
            dict[str, Tensor]:

            - instance_queries: Q_I after this stage, (n, C).
            - part_queries: Q_P^s, (n, M, d_p).
            - coords: box-relative keypoints mu in (-0.5, 0.5) for points in
              the box, (n, K, 2).
            - sigma_logits: RLE sigma before sigmoid, (n, K, 2).
            - attention: SPEGM attention maps, (n, M, 2S, 2S).
        """
        if self.update_instance_query:
            instance_queries = self.instance_conv_norm(
                instance_queries +
                self.instance_conv(instance_queries, pose_rois))
            instance_queries = self.instance_ffn_norm(
                self.instance_ffn(instance_queries))
        part_embeddings, attention = self.spegm(pose_rois)
        if self.instance_to_part is not None:
            part_embeddings = part_embeddings + self.instance_to_part(
                instance_queries).view(-1, self.num_parts, self.part_dim)
        part_queries = self.sim(part_queries, part_embeddings)
        attended, _ = self.part_attention(part_queries, part_queries,
                                          part_queries)
        part_queries = self.part_attention_norm(part_queries + attended)
        part_queries = self.part_ffn_norm(self.part_ffn(part_queries))
        return dict(
            instance_queries=instance_queries,
            part_queries=part_queries,
            coords=self.coord_head(part_queries),
            sigma_logits=self.sigma_head(part_queries),
            attention=attention)
