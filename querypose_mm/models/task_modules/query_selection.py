"""The persons of a stage's output: the best-scored decoded queries."""
from typing import List, Mapping, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ..utils import (StageOutput, keypoint_scores_from_sigma,
                     keypoints_from_box_frame)


def top_pose_tensors(
        last: StageOutput, num_keypoints: int,
        max_per_img: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``max_per_img`` best-scored decoded queries of each image, as
    batched tensors: what :func:`top_poses` returns per image, and what the
    exported ONNX graph outputs.

    The pose score is ``sigmoid(cls) * mean_k(keypoint_scores)``, the
    keypoint score the mean over x, y of ``1 - σ``; queries whose keypoints
    were not decoded rank last. The order is ``torch.topk``'s over the
    queries of each image (ties keep the query order on the CPU).

    Args:
        last (StageOutput): The last stage's outputs of B images of N
            queries.
        num_keypoints (int): K.
        max_per_img (int): k, at most N.

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]: ``keypoints`` (B, k, K, 2),
        ``keypoint_scores`` (B, k, K), ``bboxes`` (B, k, 4) xyxy
        (coordinates in input pixels) and the pose scores ``bbox_scores``
        (B, k), best first.
    """
    # scores and coordinates in float32 at least, also under bf16/fp16
    # autocast (a float64 head keeps float64)
    last = StageOutput(*(t.to(torch.promote_types(t.dtype, torch.float32)
                              ) if t.is_floating_point() else t for t in last))
    batch_size, num_queries = last.cls_scores.shape[:2]
    shape = (batch_size, num_queries, num_keypoints)
    cls_prob = last.cls_scores[..., 0].sigmoid()
    decoded = last.decoded
    keypoint_scores = keypoint_scores_from_sigma(last.sigma_logits)
    keypoints = keypoints_from_box_frame(last.coords, last.keypoint_boxes)
    # every query, in order, in a trace (the ONNX export): no scatter there
    all_decoded = decoded.numel() == batch_size * num_queries
    if not all_decoded:
        flat = batch_size * num_queries
        keypoint_scores = cls_prob.new_zeros(flat, num_keypoints).index_copy(
            0, decoded, keypoint_scores.to(cls_prob.dtype))
        keypoints = cls_prob.new_zeros(flat, num_keypoints, 2).index_copy(
            0, decoded, keypoints.to(cls_prob.dtype))
    keypoint_scores = keypoint_scores.view(shape)
    keypoints = keypoints.view(*shape, 2)
    pose_scores = cls_prob * keypoint_scores.mean(-1)
    if not all_decoded:
        # below every decoded query's score, which is >= 0
        not_decoded = torch.ones_like(pose_scores, dtype=torch.bool)
        not_decoded.view(-1)[decoded] = False
        pose_scores = pose_scores.masked_fill(not_decoded, -1.0)
    pose_scores, order = pose_scores.topk(max_per_img, dim=1)

    def gather(values: Tensor) -> Tensor:
        """``values`` (B, N, ...) at ``order`` (B, k) -> (B, k, ...)."""
        index = order[(..., ) + (None, ) * (values.dim() - 2)]
        return values.gather(1, index.expand(-1, -1, *values.shape[2:]))

    return (gather(keypoints), gather(keypoint_scores), gather(last.boxes),
            pose_scores)


def top_poses(last: StageOutput, num_keypoints: int,
              max_per_img: int) -> List[InstanceData]:
    """The ``max_per_img`` best-scored decoded queries of each image.

    Returns:
        list[InstanceData]: Per image, numpy ``keypoints`` (n, K, 2),
        ``keypoint_scores`` (n, K) = mean over x, y of ``1 - σ``, ``bboxes``
        (n, 4) xyxy and ``bbox_scores`` (n,) = the pose score
        ``sigmoid(cls) * mean_k(keypoint_scores)`` they are ranked by;
        queries whose keypoints were not decoded rank last (see
        :func:`top_pose_tensors`).
    """
    keypoints, keypoint_scores, bboxes, bbox_scores = (
        t.cpu().numpy()
        for t in top_pose_tensors(last, num_keypoints, max_per_img))
    return [
        InstanceData(
            keypoints=keypoints[i],
            keypoint_scores=keypoint_scores[i],
            bboxes=bboxes[i],
            bbox_scores=bbox_scores[i]) for i in range(len(bbox_scores))
    ]


def persons_per_image(test_cfg: Mapping, num_queries: int) -> int:
    """How many persons of an image a prediction keeps:
    ``test_cfg.max_per_img``, every query if unset, at most every query."""
    return min(test_cfg.get('max_per_img') or num_queries, num_queries)
