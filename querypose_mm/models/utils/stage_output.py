from typing import NamedTuple, Optional

from torch import Tensor


class StageOutput(NamedTuple):
    """What one QueryPose stage predicts, for the loss and for inference.

    ``N`` queries per image, ``B`` images; the queries whose keypoints the
    stage decoded are given by their flat indices into ``B * N``.

    Attributes:
        cls_scores (Tensor): Person logits, (B, N, 1).
        boxes (Tensor): Refined boxes, xyxy input-frame pixels, (B, N, 4).
        decoded (Tensor): Sorted flat indices of the decoded queries, (n,).
        coords (Tensor): Their box-frame keypoints μ, (n, K, 2).
        sigma_logits (Tensor): Their RLE σ before sigmoid, (n, K, 2).
        keypoint_boxes (Tensor): The detached boxes ``coords`` are relative
            to, (n, 4).
    """
    cls_scores: Tensor
    boxes: Tensor
    decoded: Tensor
    coords: Tensor
    sigma_logits: Tensor
    keypoint_boxes: Tensor


class QueryState(NamedTuple):
    """What a stage hands to the next: boxes (B, N, 4), detached, xyxy
    input pixels; instance queries Q_I (B, N, C); part queries Q_P
    (B * N, M, d_p); the flat indices of the queries the stage decoded, in
    order (None for the proposals)."""
    boxes: Tensor
    instance_queries: Tensor
    part_queries: Tensor
    decoded: Optional[Tensor]
