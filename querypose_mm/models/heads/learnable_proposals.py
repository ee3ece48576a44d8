from typing import Tuple

import torch
import torch.nn as nn
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.model import BaseModule
from torch import Tensor

from mmpose.registry import MODELS


@MODELS.register_module()
class LearnableProposals(BaseModule):
    """The learnable starting point of every person query (Sparse R-CNN's
    ``EmbeddingRPNHead``, plus QueryPose's part queries).

    N boxes (normalised cx, cy, w, h; each starts as the whole image), N
    instance queries Q_I^0 and one set of M part queries Q_P^0 shared by
    every instance.

    Args:
        num_queries (int): N.
        instance_dim (int): Size C of an instance query.
        num_parts (int): M.
        part_dim (int): Size d_p of a part query.
    """

    def __init__(self,
                 num_queries: int,
                 instance_dim: int,
                 num_parts: int,
                 part_dim: int,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.num_queries = num_queries
        self.init_proposal_bboxes = nn.Embedding(num_queries, 4)
        self.init_proposal_features = nn.Embedding(num_queries, instance_dim)
        self.init_part_queries = nn.Embedding(num_parts, part_dim)
        # valid at construction, so a model built without init_weights()
        # (mmpose's init_model, get_flops) still runs
        self._init_boxes()
        self.register_load_state_dict_post_hook(_check_loaded_boxes)

    def _init_boxes(self) -> None:
        with torch.no_grad():
            self.init_proposal_bboxes.weight[:, :2] = 0.5
            self.init_proposal_bboxes.weight[:, 2:] = 1.0

    def init_weights(self) -> None:
        super().init_weights()
        self._init_boxes()

    def check_boxes(self) -> None:
        """Fail clearly on a non-positive (or NaN) proposal width or height,
        which mmcv's CPU RoIAlign would stop on with an internal assert."""
        if not (self.init_proposal_bboxes.weight[:, 2:] > 0).all():
            raise ValueError(
                'LearnableProposals.init_proposal_bboxes has non-positive '
                '(or NaN) widths/heights: the checkpoint is broken or the '
                'weights were overwritten; load a trained checkpoint or call '
                'model.init_weights()')

    def forward(self, img_whwh: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The proposals of a batch.

        Args:
            img_whwh (Tensor): (w, h, w, h) of each unpadded input, (B, 4).

        Returns:
            tuple[Tensor, Tensor, Tensor]: boxes, xyxy input pixels,
            (B, N, 4); instance queries (B, N, C); part queries
            (B * N, M, d_p).
        """
        # a host sync: at inference only; training's weights were checked
        # where they came in (construction, init_weights, load)
        if not self.training and not torch.jit.is_tracing():
            self.check_boxes()
        batch_size = img_whwh.size(0)
        boxes = bbox_cxcywh_to_xyxy(self.init_proposal_bboxes.weight)
        boxes = boxes[None] * img_whwh[:, None]
        instance_queries = self.init_proposal_features.weight[None].expand(
            batch_size, -1, -1)
        part_queries = self.init_part_queries.weight[None].expand(
            batch_size * self.num_queries, -1, -1)
        return boxes, instance_queries, part_queries


def _check_loaded_boxes(module: LearnableProposals, incompatible_keys) -> None:
    """``load_state_dict`` post hook: the loaded proposals are valid."""
    module.check_boxes()
