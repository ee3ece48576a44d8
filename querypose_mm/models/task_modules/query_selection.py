"""The persons of a stage's output: the best-scored decoded queries."""
from typing import List, Mapping

import torch
from mmengine.structures import InstanceData

from ..utils import (StageOutput, keypoint_scores_from_sigma,
                     keypoints_from_box_frame)


def top_poses(last: StageOutput, num_keypoints: int,
              max_per_img: int) -> List[InstanceData]:
    """The ``max_per_img`` best-scored decoded queries of each image.

    Returns:
        list[InstanceData]: Per image, numpy ``keypoints`` (n, K, 2),
        ``keypoint_scores`` (n, K) = mean over x, y of ``1 - σ``, ``bboxes``
        (n, 4) xyxy and ``bbox_scores`` (n,) = the pose score
        ``sigmoid(cls) * mean_k(keypoint_scores)`` they are ranked by;
        queries whose keypoints were not decoded rank last.
    """
    # scores and coordinates in float32 at least, also under bf16/fp16
    # autocast (a float64 head keeps float64)
    last = StageOutput(*(t.to(torch.promote_types(t.dtype, torch.float32)
                              ) if t.is_floating_point() else t for t in last))
    batch_size, num_queries = last.cls_scores.shape[:2]
    k = num_keypoints
    cls_prob = last.cls_scores[..., 0].sigmoid()
    decoded = last.decoded
    # queries whose keypoints were not decoded rank below every other
    keypoint_scores = cls_prob.new_zeros(batch_size * num_queries, k)
    keypoint_scores[decoded] = keypoint_scores_from_sigma(
        last.sigma_logits).to(cls_prob.dtype)
    keypoint_scores = keypoint_scores.view(batch_size, num_queries, k)
    pose_scores = cls_prob * keypoint_scores.mean(-1)
    if decoded.numel() < batch_size * num_queries:
        not_decoded = torch.ones_like(pose_scores, dtype=torch.bool)
        not_decoded.view(-1)[decoded] = False
        pose_scores = pose_scores.masked_fill(not_decoded, -1.0)
    keypoints = cls_prob.new_zeros(batch_size * num_queries, k, 2)
    keypoints[decoded] = keypoints_from_box_frame(
        last.coords, last.keypoint_boxes).to(cls_prob.dtype)
    keypoints = keypoints.view(batch_size, num_queries, k, 2)

    preds = []
    for i in range(batch_size):
        scores, order = pose_scores[i].topk(max_per_img)
        preds.append(
            InstanceData(
                keypoints=keypoints[i, order].cpu().numpy(),
                keypoint_scores=keypoint_scores[i, order].cpu().numpy(),
                bboxes=last.boxes[i, order].cpu().numpy(),
                bbox_scores=scores.cpu().numpy()))
    return preds


def persons_per_image(test_cfg: Mapping, num_queries: int) -> int:
    """How many persons of an image a prediction keeps:
    ``test_cfg.max_per_img``, every query if unset, at most every query."""
    return min(test_cfg.get('max_per_img') or num_queries, num_queries)
