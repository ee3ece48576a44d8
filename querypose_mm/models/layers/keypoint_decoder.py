import math
import warnings
from typing import Dict, List, Sequence

import torch.nn as nn
from mmcv.cnn.bricks.transformer import FFN
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mmpose.registry import MODELS
from mmpose.utils.typing import ConfigType
from ..utils import check_part_groups, mmdet_cfg, rename_keys
from .partwise_linear import PartwiseLinear
from .sim import SelectiveIteration
from .spegm import SpatialPartEmbedding


@MODELS.register_module()
class KeypointDecoderStage(BaseModule):
    """One keypoint-decoder stage of QueryPose (eq. 2 and Fig. 3).

    pose RoI (S x S on P2) -> conv stack, whose output feeds both the Q_I
    update (DynamicConv + FFN, full version only) and SPEGM; the part
    embeddings (+ a per-part projection of the updated Q_I) -> SIM with the
    previous part queries -> MHA over the parts of each person + FFN ->
    per-part coordinate and sigma linears.

    Args:
        part_groups (list[list[int]]): Keypoint indices of each part, every
            keypoint exactly once.
        num_keypoints (int): K.
        in_channels (int): Channels C of the RoI and of Q_I.
        part_dim (int): d_p.
        roi_size (int): Side S of the pose RoI.
        num_convs (int): 3x3 conv + ReLU layers of the conv stack.
        conv_channels (int): Channels inside the conv stack; its last conv
            returns to ``in_channels``.
        num_heads (int): Heads of the part attention.
        feedforward_channels (int): Hidden width of the FFNs.
        dynamic_conv_cfg (dict): mmdet ``DynamicConv`` of the Q_I update;
            its in/out channels and input size are filled in from
            ``in_channels`` and ``roi_size``.
        update_instance_query (bool): Fig. 3(b): Q_I is refined here with its
            own DynamicConv + FFN and can be handed to the next box decoder.
            False is Fig. 3(a) and the official "light" version.
            Defaults to True.
        instance_to_part (bool): Add ``Linear_i(Q_I)`` to the i-th part
            embedding, as the official code does. Defaults to True.
        iteration (str): Mode of :class:`SelectiveIteration` (Table 2a).
            Defaults to ``'sim'``.
        dropout (float): Dropout in attention/FFN. Defaults to 0.
        xavier_reinit (bool): After the modules' own init, re-initialise
            every >= 2-D weight xavier-uniform (gain 1), as the official
            ``Decoder._reset_parameters`` does (mmdet's ``DIIHead`` does the
            same for the box decoders). A weight that holds one official
            layer per part is drawn part by part, with that layer's fans.
            Defaults to False (the conv stack kaiming-normal, the keypoint
            linears xavier with gain 0.01, as RLE).
        with_cp (bool): In training, recompute the conv stack in the
            backward pass instead of keeping its activations (mmdet's
            activation checkpointing switch): the stack's 512-channel maps of
            every decoded query are most of a training step's memory.
            Defaults to False.
    """
    # 2: the conv stack moved from ``spegm.conv_stack`` to ``conv_stack``;
    # 3: the Q_I update reads the conv stack's output, not the raw RoI
    _version = 3

    def __init__(self,
                 part_groups: Sequence[Sequence[int]],
                 num_keypoints: int,
                 in_channels: int,
                 part_dim: int,
                 roi_size: int,
                 num_convs: int,
                 conv_channels: int,
                 num_heads: int,
                 feedforward_channels: int,
                 dynamic_conv_cfg: ConfigType,
                 update_instance_query: bool = True,
                 instance_to_part: bool = True,
                 iteration: str = 'sim',
                 dropout: float = 0.0,
                 xavier_reinit: bool = False,
                 with_cp: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        check_part_groups(part_groups, num_keypoints)
        self.part_groups: List[List[int]] = [list(g) for g in part_groups]
        self.num_parts = len(part_groups)
        self.part_dim = part_dim
        self.in_channels = in_channels
        self.update_instance_query = update_instance_query
        self.xavier_reinit = xavier_reinit
        self.with_cp = with_cp
        layers = []
        for i in range(num_convs):
            c_in = in_channels if i == 0 else conv_channels
            c_out = in_channels if i == num_convs - 1 else conv_channels
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(True)]
        self.conv_stack = nn.Sequential(*layers)
        if update_instance_query:
            conv_cfg = dict(
                dynamic_conv_cfg,
                in_channels=in_channels,
                out_channels=in_channels,
                input_feat_shape=roi_size)
            self.instance_conv = MMDET_MODELS.build(mmdet_cfg(conv_cfg))
            self.instance_conv_norm = nn.LayerNorm(in_channels)
            self.instance_ffn = FFN(
                in_channels, feedforward_channels, ffn_drop=dropout)
            self.instance_ffn_norm = nn.LayerNorm(in_channels)
        self.instance_to_part = nn.Linear(
            in_channels, self.num_parts *
            part_dim) if instance_to_part else None
        self.spegm = SpatialPartEmbedding(self.num_parts, in_channels,
                                          part_dim)
        self.sim = SelectiveIteration(part_dim, iteration)
        self.part_attention = nn.MultiheadAttention(
            part_dim, num_heads, dropout=dropout, batch_first=True)
        self.part_attention_norm = nn.LayerNorm(part_dim)
        self.part_ffn = FFN(part_dim, feedforward_channels, ffn_drop=dropout)
        self.part_ffn_norm = nn.LayerNorm(part_dim)
        self.coord_head = PartwiseLinear(
            part_groups, part_dim, normalize_input=True, init_gain=0.01)
        self.sigma_head = PartwiseLinear(part_groups, part_dim)

    def init_weights(self) -> None:
        super().init_weights()
        for m in self.conv_stack.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
        if self.xavier_reinit:
            self._reset_parameters_xavier()

    def _reset_parameters_xavier(self) -> None:
        per_part = {id(self.coord_head.weight), id(self.sigma_head.weight)}
        if self.instance_to_part is not None:
            per_part.add(id(self.instance_to_part.weight))
            for chunk in self.instance_to_part.weight.data.split(
                    self.part_dim):  # (d_p, C) per part
                nn.init.xavier_uniform_(chunk)
        for head in (self.coord_head, self.sigma_head):
            # part p's linear: (|p| * dim_per_keypoint, d_p)
            for group in self.part_groups:
                weight = head.weight.data[group]
                fan_out = weight.size(0) * weight.size(2)
                bound = math.sqrt(6.0 / (weight.size(1) + fan_out))
                head.weight.data[group] = weight.uniform_(-bound, bound)
        for param in self.parameters():
            if param.dim() > 1 and id(param) not in per_part:
                nn.init.xavier_uniform_(param)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args,
                              **kwargs) -> None:
        version = local_metadata.get('version', 1)
        if version < 2:
            rename_keys(state_dict, prefix,
                        {'spegm.conv_stack.': 'conv_stack.'})
        holds_this_stage = any(key.startswith(prefix) for key in state_dict)
        if version < 3 and self.update_instance_query and holds_this_stage:
            warnings.warn(
                f'{prefix or "KeypointDecoderStage"}: this checkpoint was '
                'trained while the Q_I update read the raw pose RoI; it now '
                'reads the conv stack output, as the official QueryPose '
                'does, so the full (non-light) model gives different '
                'outputs; fine-tune or retrain it',
                stacklevel=2)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)

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
            - coords: box-frame keypoints μ, in (-0.5, 0.5) for points in
              the box, (n, K, 2).
            - sigma_logits: RLE σ before sigmoid, (n, K, 2).
            - attention: SPEGM attention maps, (n, M, 2S, 2S).
        """
        if self.with_cp and self.training and pose_rois.requires_grad:
            roi_feats = checkpoint(
                self.conv_stack, pose_rois, use_reentrant=False)
        else:
            roi_feats = self.conv_stack(pose_rois)
        if self.update_instance_query:
            instance_queries = self.instance_conv_norm(
                instance_queries +
                self.instance_conv(instance_queries, roi_feats))
            instance_queries = self.instance_ffn_norm(
                self.instance_ffn(instance_queries))
        part_embeddings, attention = self.spegm(roi_feats)
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
