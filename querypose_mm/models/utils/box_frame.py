"""Coordinate frames of the head.

Boxes are xyxy in input-frame pixels (the resized, unpadded network input).
Keypoints are regressed in the *box frame* of their person's predicted box:
centre 0, edges at ±0.5, so ``x = (μ + 0.5) * w + x1``.
"""
from typing import Sequence

import numpy as np
import torch
from torch import Tensor


def boxes_to_rois(boxes: Tensor, batch_inds: Tensor) -> Tensor:
    """Stack (n, 4) xyxy boxes with their image indices (n,) into the (n, 5)
    RoIs of mmcv's ``RoIAlign``."""
    return torch.cat([batch_inds[:, None].to(boxes.dtype), boxes], dim=1)


def decode_boxes(bbox_coder,
                 boxes: Tensor,
                 deltas: Tensor,
                 wh_ratio_clip: float,
                 growth_only_clip: bool = False) -> Tensor:
    """mmdet's ``delta2bbox`` (``bbox_coder.decode``), (n, 4) -> (n, 4), a
    box side changing at most by ``1 / wh_ratio_clip``; with
    ``growth_only_clip`` (the official clamp) only growth is bounded."""
    if not growth_only_clip:
        return bbox_coder.decode(boxes, deltas, wh_ratio_clip=wh_ratio_clip)
    # bound the normalised log-sizes from above here, and let the coder's
    # symmetric clamp never bind
    mean = deltas.new_tensor(bbox_coder.means[2:])
    std = deltas.new_tensor(bbox_coder.stds[2:])
    max_log = (abs(np.log(wh_ratio_clip)) - mean) / std
    deltas = torch.cat(
        [deltas[:, :2], torch.minimum(deltas[:, 2:], max_log)], dim=1)
    return bbox_coder.decode(boxes, deltas, wh_ratio_clip=1e-30)


def keypoints_to_box_frame(keypoints: Tensor, boxes: Tensor) -> Tensor:
    """Express keypoints relative to their box: centre 0, edges at ±0.5.

    Args:
        keypoints (Tensor): Input-frame keypoints, (n, K, 2).
        boxes (Tensor): xyxy boxes, (n, 4).

    Returns:
        Tensor: ``(x - x1) / w - 0.5`` per axis, (n, K, 2).
    """
    xy1 = boxes[:, None, :2]
    wh = (boxes[:, None, 2:] - boxes[:, None, :2]).clamp_min(1e-6)
    return (keypoints - xy1) / wh - 0.5


def keypoints_from_box_frame(coords: Tensor, boxes: Tensor) -> Tensor:
    """Inverse of :func:`keypoints_to_box_frame`: ``(μ + 0.5) * w + x1``.

    Args:
        coords (Tensor): Box-frame keypoints, (..., K, 2).
        boxes (Tensor): xyxy boxes, (..., 4).

    Returns:
        Tensor: Input-frame keypoints, (..., K, 2).
    """
    xy1 = boxes[..., None, :2]
    wh = boxes[..., None, 2:] - boxes[..., None, :2]
    return (coords + 0.5) * wh + xy1


def keypoint_scores_from_sigma(sigma_logits: Tensor) -> Tensor:
    """Keypoint confidence, (n, K): the mean over x, y of ``1 - σ`` from the
    RLE sigma logits (n, K, 2).

    The pose score is ``sigmoid(cls)`` times its mean over K, hence never
    above the class probability (the exact fast inference relies on it).
    """
    return (1 - sigma_logits.sigmoid()).mean(-1)


def image_whwh(batch_data_samples: Sequence, device) -> Tensor:
    """``(w, h, w, h)`` of each unpadded input image, (B, 4).

    Read from ``img_shape``, which mmpose's resizing transforms keep current
    (``BottomupRandomAffine`` leaves it stale: use the resize transforms).
    """
    sizes = []
    for sample in batch_data_samples:
        h, w = sample.metainfo['img_shape'][:2]
        sizes.append([w, h, w, h])
    return torch.tensor(sizes, dtype=torch.float32, device=device)
