from typing import Dict, List, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.utils import reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from mmpose.registry import MODELS
from mmpose.utils.typing import ConfigType
from ..utils import StageOutput, keypoints_to_box_frame, mmdet_cfg


class StageMatch(NamedTuple):
    """Hungarian matching of one stage.

    Attributes:
        query_inds (Tensor): Flat indices (into ``B * N``) of the matched
            queries, sorted, (m,).
        gt_inds (Tensor): Index of each one's person in the batch's
            concatenated ground truth, (m,).
    """
    query_inds: Tensor
    gt_inds: Tensor


def pack_gt_instances(
        batch_data_samples: Sequence,
        num_keypoints: int,
        device,
        dtype: torch.dtype = torch.float32) -> List[InstanceData]:
    """Each sample's ground truth as ``dtype`` tensors: ``bboxes`` (n, 4)
    xyxy, ``labels`` (n,) zeros, ``keypoints`` (n, K, 2) and
    ``keypoints_visible`` (n, K), in input-frame pixels.

    Raises:
        ValueError: Naming the image, for a keypoint count other than K or a
            non-finite box or keypoint.
    """
    gts = []
    for sample in batch_data_samples:
        gt = sample.gt_instances
        name = sample.metainfo.get('img_path', 'a sample')
        n = len(gt.bboxes) if 'bboxes' in gt else 0
        if n and np.asarray(gt.keypoints).shape[1] != num_keypoints:
            raise ValueError(
                f'{name} has {np.asarray(gt.keypoints).shape[1]} keypoints '
                f'per person but QueryPoseHead.num_keypoints is '
                f'{num_keypoints}; set model.head.num_keypoints (and '
                'part_groups) to match the dataset')
        if n and not (np.isfinite(np.asarray(gt.bboxes)).all()
                      and np.isfinite(np.asarray(gt.keypoints)).all()):
            # the matcher's costs would be NaN and scipy's assignment would
            # fail with 'invalid numeric entries'
            raise ValueError(
                f'{name} has a non-finite (NaN/inf) ground-truth box or '
                'keypoint; fix the annotation, or add FilterInstances to the '
                'train pipeline, which names the annotation id')

        def as_tensor(value, shape):
            array = np.asarray(value, np.float32).reshape(shape) if n else \
                np.zeros(shape, np.float32)
            return torch.as_tensor(array, device=device).to(dtype)

        gts.append(
            InstanceData(
                bboxes=as_tensor(gt.get('bboxes'), (n, 4)),
                labels=torch.zeros(n, dtype=torch.long, device=device),
                keypoints=as_tensor(
                    gt.get('keypoints'), (n, num_keypoints, 2)),
                keypoints_visible=as_tensor(
                    gt.get('keypoints_visible'), (n, num_keypoints))))
    return gts


@MODELS.register_module()
class QueryPoseCriterion(nn.Module):
    """Set matching and losses of every stage (DETR's ``SetCriterion``).

    Each stage's queries are matched one-to-one to the persons of their
    image by mmdet's Hungarian assigner on boxes (focal class cost, L1 on
    image-normalised boxes, GIoU); the matched queries are supervised by
    focal classification, L1 + GIoU on boxes and RLE on box-frame keypoints,
    the unmatched ones as background. Every loss is averaged over the
    number of GT persons (across processes).

    Args:
        num_keypoints (int): K.
        assigner (dict): mmdet assigner.
        loss_cls (dict): mmdet classification loss (sigmoid focal).
        loss_bbox (dict): mmdet L1 loss, on boxes divided by the image size.
        loss_iou (dict): mmdet IoU loss (GIoU).
        loss_keypoint (dict): :class:`QueryPoseRLELoss`, averaged over the
            GT persons times K.
    """

    def __init__(self, num_keypoints: int, assigner: ConfigType,
                 loss_cls: ConfigType, loss_bbox: ConfigType,
                 loss_iou: ConfigType, loss_keypoint: ConfigType) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.assigner = MMDET_TASK_UTILS.build(mmdet_cfg(assigner))
        self.loss_cls = MMDET_MODELS.build(mmdet_cfg(loss_cls))
        self.loss_bbox = MMDET_MODELS.build(mmdet_cfg(loss_bbox))
        self.loss_iou = MMDET_MODELS.build(mmdet_cfg(loss_iou))
        self.loss_keypoint = MODELS.build(loss_keypoint)

    def match_stage(self, cls_scores: Tensor, boxes: Tensor,
                    gts: Sequence[InstanceData],
                    img_whwh: Tensor) -> StageMatch:
        """Hungarian matching of one stage, on detached boxes and scores
        (finite: :class:`QueryPoseHead` checks each stage).

        Args:
            cls_scores (Tensor): Person logits, (B, N, 1).
            boxes (Tensor): Boxes, xyxy input pixels, (B, N, 4).
            gts (list[InstanceData]): From :func:`pack_gt_instances`.
            img_whwh (Tensor): (w, h, w, h) per image, (B, 4).

        Returns:
            StageMatch: The matched queries, sorted (by image, then query).
        """
        num_queries = cls_scores.size(1)
        gt_offsets = np.cumsum([0] + [len(gt) for gt in gts])
        query_inds, gt_inds = [], []
        for i, gt in enumerate(gts):
            pred = InstanceData(
                scores=cls_scores[i].detach(), bboxes=boxes[i].detach())
            img_meta = dict(
                img_shape=(img_whwh[i, 1].item(), img_whwh[i, 0].item()))
            assigned = self.assigner.assign(pred, gt, img_meta=img_meta)
            pos = torch.nonzero(assigned.gt_inds > 0).squeeze(1)
            query_inds.append(pos + i * num_queries)
            gt_inds.append(assigned.gt_inds[pos] - 1 + int(gt_offsets[i]))
        return StageMatch(torch.cat(query_inds), torch.cat(gt_inds))

    def forward(self, outputs: Sequence[StageOutput],
                matches: Sequence[StageMatch], gts: Sequence[InstanceData],
                img_whwh: Tensor) -> Dict[str, Tensor]:
        """Losses of every stage.

        Returns:
            dict[str, Tensor]: ``s{i}.loss_cls``, ``s{i}.loss_bbox``,
            ``s{i}.loss_iou`` and ``s{i}.loss_kpt`` for each stage i.
        """
        device = img_whwh.device
        num_gts = sum(len(gt) for gt in gts)
        avg_factor = reduce_mean(torch.tensor(
            float(num_gts), device=device)).clamp_min(1).item()
        gt = InstanceData(
            bboxes=torch.cat([gt.bboxes for gt in gts]),
            keypoints=torch.cat([gt.keypoints for gt in gts]),
            keypoints_visible=torch.cat([gt.keypoints_visible for gt in gts]))
        losses = dict()
        for stage, (out, match) in enumerate(zip(outputs, matches)):
            matched_gt = gt[match.gt_inds]
            losses[f's{stage}.loss_cls'] = self.loss_classification(
                out, match, avg_factor)
            losses[f's{stage}.loss_bbox'], losses[f's{stage}.loss_iou'] = \
                self.loss_boxes(out, match, matched_gt, img_whwh, avg_factor)
            losses[f's{stage}.loss_kpt'] = self.loss_keypoints(
                out, match, matched_gt, avg_factor)
        return losses

    def loss_classification(self, out: StageOutput, match: StageMatch,
                            avg_factor: float) -> Tensor:
        """Focal loss: matched queries are persons (label 0), the others
        background (label 1 = num_classes, mmdet's convention)."""
        labels = torch.ones(
            out.cls_scores.shape[:2].numel(),
            dtype=torch.long,
            device=out.cls_scores.device)
        labels[match.query_inds] = 0
        return self.loss_cls(
            out.cls_scores.reshape(-1, 1), labels, avg_factor=avg_factor)

    def loss_boxes(self, out: StageOutput, match: StageMatch,
                   matched_gt: InstanceData, img_whwh: Tensor,
                   avg_factor: float) -> tuple:
        """L1 on image-normalised xyxy boxes and GIoU, matched queries."""
        num_queries = out.cls_scores.size(1)
        pos_boxes = out.boxes.reshape(-1, 4)[match.query_inds]
        whwh = img_whwh[match.query_inds // num_queries]
        loss_bbox = self.loss_bbox(
            pos_boxes / whwh, matched_gt.bboxes / whwh, avg_factor=avg_factor)
        loss_iou = self.loss_iou(
            pos_boxes, matched_gt.bboxes, avg_factor=avg_factor)
        return loss_bbox, loss_iou

    def loss_keypoints(self, out: StageOutput, match: StageMatch,
                       matched_gt: InstanceData, avg_factor: float) -> Tensor:
        """RLE on the matched queries, relative to their predicted boxes.

        Keypoints that are not labelled or lie outside the (detached)
        predicted box get weight 0 (QueryPose §3.4).
        """
        # each matched query's row among the decoded ones
        rows = torch.searchsorted(out.decoded, match.query_inds)
        if rows.numel() == 0:
            # keep the graph connected (no matched person in the batch)
            return out.cls_scores.sum() * 0
        if out.decoded.numel() == 0 or not torch.equal(
                out.decoded[rows.clamp_max(out.decoded.numel() - 1)],
                match.query_inds):
            raise ValueError('a matched query was not decoded by its stage; '
                             'the keypoint loss needs every matched query')
        target = keypoints_to_box_frame(matched_gt.keypoints,
                                        out.keypoint_boxes[rows])
        inside = (target.abs() <= 0.5).all(dim=-1)
        weight = ((matched_gt.keypoints_visible > 0) & inside).float()
        return self.loss_keypoint(
            out.coords[rows],
            out.sigma_logits[rows],
            target.detach(),
            weight,
            avg_factor=avg_factor * self.num_keypoints)
