"""Fast inference: decode the keypoints of only some queries.

The keypoint decoder (its conv stack above all) is most of QueryPose's cost,
and only the ``max_per_img`` best persons are kept. ``test_cfg.decode_topk``
runs it on ``decode_topk`` queries per image; how depends on whether the
keypoint decoder feeds the box decoders (:func:`decode_topk_stages`).
"""
from typing import Callable, List, Optional, Sequence

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ..utils import (QuerySelector, StageOutput, keypoint_scores_from_sigma,
                     keypoints_from_box_frame)

RunStages = Callable[[Sequence[Tensor], Tensor, Optional[QuerySelector]],
                     List[StageOutput]]


def query_offsets(img_whwh: Tensor, num_queries: int) -> Tensor:
    """First flat query index of each image, (B, 1)."""
    return torch.arange(
        img_whwh.size(0), device=img_whwh.device)[:, None] * num_queries


def topk_per_stage(decode_topk: int, offsets: Tensor) -> QuerySelector:
    """Each stage decodes its own ``decode_topk`` best-scored queries."""

    def select(stage: int, cls_scores: Tensor, boxes: Tensor) -> Tensor:
        top = cls_scores[..., 0].topk(decode_topk, dim=1).indices
        return (top + offsets).flatten().sort().values

    return select


def decode_topk_exact(run_stages: RunStages, feats: Sequence[Tensor],
                      img_whwh: Tensor, num_queries: int, decode_topk: int,
                      max_per_img: int) -> StageOutput:
    """Decode the final stage's ``decode_topk`` best queries in every stage;
    equal to full decoding when the box path does not read the keypoints.

    A pose score is ``sigmoid(cls)`` times a number in [0, 1], so a query
    left out cannot outrank the ``max_per_img`` kept ones when its class
    probability is below their lowest pose score; the queries above it are
    decoded in one more pass.
    """
    offsets = query_offsets(img_whwh, num_queries)
    none = offsets.new_zeros(0)
    boxes_only = run_stages(feats, img_whwh, lambda *_: none)[-1]
    final_prob = boxes_only.cls_scores[..., 0].sigmoid()
    top = final_prob.topk(decode_topk, dim=1).indices
    decoded = (top + offsets).flatten().sort().values
    last = run_stages(feats, img_whwh, lambda *_: decoded)[-1]

    pose_scores = final_prob.new_full(final_prob.shape, -1.0)
    pose_scores.view(-1)[decoded] = final_prob.view(-1)[decoded] * \
        keypoint_scores_from_sigma(last.sigma_logits).mean(-1).to(
            final_prob.dtype)
    kept_lowest = pose_scores.topk(max_per_img, dim=1).values[:, -1:]
    could_rank = final_prob > kept_lowest
    could_rank.view(-1)[decoded] = True
    if could_rank.sum() > decoded.numel():
        # Decoding more queries can only raise the lowest kept score, so
        # after this pass no query left out can outrank a kept one.
        decoded = could_rank.flatten().nonzero()[:, 0]
        last = run_stages(feats, img_whwh, lambda *_: decoded)[-1]
    return last


def decode_topk_stages(run_stages: RunStages, feats: Sequence[Tensor],
                       img_whwh: Tensor, num_queries: int, decode_topk: int,
                       max_per_img: int,
                       keypoints_feed_box_decoders: bool) -> StageOutput:
    """The last stage's output, keypoints decoded for some queries only.

    - When keypoint decoding does not feed the box decoders (the light
      version, or ``instance_query_flow='box_only'``): the box decoders run
      first and :func:`decode_topk_exact` decodes the final best queries in
      every stage; the result equals full decoding.
    - Otherwise (the full version with the serial flow), each stage decodes
      the ``decode_topk`` queries with its own highest class scores; a query
      left out keeps its Q_I and part queries of the last stage that decoded
      it. This changes the output (README: measured speed-up and AP change).
    """
    if decode_topk < max_per_img:
        raise ValueError(f'test_cfg.decode_topk ({decode_topk}) must be >= '
                         f'max_per_img ({max_per_img})')
    if keypoints_feed_box_decoders:
        select = topk_per_stage(decode_topk,
                                query_offsets(img_whwh, num_queries))
        return run_stages(feats, img_whwh, select)[-1]
    return decode_topk_exact(run_stages, feats, img_whwh, num_queries,
                             decode_topk, max_per_img)


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
    # scores and coordinates in float32, also under bf16/fp16 autocast
    last = StageOutput(*(t.float() if t.is_floating_point() else t
                         for t in last))
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
                keypoints=keypoints[i, order].float().cpu().numpy(),
                keypoint_scores=keypoint_scores[i,
                                                order].float().cpu().numpy(),
                bboxes=last.boxes[i, order].float().cpu().numpy(),
                bbox_scores=scores.float().cpu().numpy()))
    return preds
