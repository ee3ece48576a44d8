from typing import Dict, List, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmdet.models.task_modules import HungarianAssigner
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.utils import reduce_mean
from mmengine.dist import get_world_size
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
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
    ``keypoints_visible`` (n, K), in input-frame pixels; the metainfo
    ``img_shape`` is the unpadded input's (h, w), as floats of
    :func:`image_whwh` (read here, so the matcher needs no device value).

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

        img_h, img_w = sample.metainfo['img_shape'][:2]
        gts.append(
            InstanceData(
                metainfo=dict(
                    img_shape=(float(np.float32(img_h)),
                               float(np.float32(img_w)))),
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
        if not isinstance(self.assigner, HungarianAssigner):
            raise ValueError(
                'model.head.criterion.assigner must be mmdet\'s '
                "HungarianAssigner (type='HungarianAssigner', whose "
                'match_costs the criterion evaluates for a whole stage at '
                f'once), got {type(self.assigner).__name__}')
        self.loss_cls = MMDET_MODELS.build(mmdet_cfg(loss_cls))
        self.loss_bbox = MMDET_MODELS.build(mmdet_cfg(loss_bbox))
        self.loss_iou = MMDET_MODELS.build(mmdet_cfg(loss_iou))
        self.loss_keypoint = MODELS.build(loss_keypoint)

    def match_stage(self, cls_scores: Tensor, boxes: Tensor,
                    gts: Sequence[InstanceData], stage: int) -> StageMatch:
        """Hungarian matching of one stage, on detached boxes and scores.

        mmdet's ``HungarianAssigner`` per image, with one device-to-host
        copy for the whole stage (its costs and whether the stage is
        finite) instead of two host syncs per image.

        A non-finite stage output is a ``FloatingPointError``: the next
        RoIAlign would stop on an internal assert (CPU), and scipy's
        assignment on 'cost matrix is infeasible'. Under autocast (mixed
        precision) it is not: an fp16 overflow is expected now and then,
        the losses turn non-finite and the ``GradScaler`` skips the step;
        the matching then runs on the costs with NaN/inf replaced.

        Args:
            cls_scores (Tensor): Person logits, (B, N, 1).
            boxes (Tensor): Boxes, xyxy input pixels, (B, N, 4).
            gts (list[InstanceData]): From :func:`pack_gt_instances` (with
                the image sizes that mmdet's box cost reads).
            stage (int): Which stage, for the error message.

        Returns:
            StageMatch: The matched queries, sorted (by image, then query).

        Raises:
            FloatingPointError: Naming the stage, for non-finite class
                scores or boxes outside autocast.
        """
        num_queries = cls_scores.size(1)
        cls_scores, boxes = cls_scores.detach(), boxes.detach()
        costs = [
            self._match_costs(cls_scores[i], boxes[i],
                              gt).flatten().to(cls_scores.dtype)
            for i, gt in enumerate(gts) if len(gt)
        ]
        finite = torch.isfinite(cls_scores).all() & torch.isfinite(boxes).all()
        # the one host sync of the stage: scipy needs the costs
        host = torch.cat([finite.to(cls_scores.dtype).view(1)] +
                         costs).cpu().numpy()
        if not host[0] and not torch.is_autocast_enabled(
                cls_scores.device.type):
            raise FloatingPointError(
                f'stage {stage} of QueryPoseHead predicted non-finite class '
                'scores or boxes; the training diverged (lower the lr, keep '
                'clip_grad) or the input or weights hold NaN/inf')
        gt_offsets = np.cumsum([0] + [len(gt) for gt in gts])
        query_inds, gt_inds = [], []
        start = 1
        for i, gt in enumerate(gts):
            if not len(gt):
                continue
            cost = host[start:start + num_queries * len(gt)].reshape(
                num_queries, len(gt))
            start += cost.size
            rows, cols = linear_sum_assignment(np.nan_to_num(cost))
            order = np.argsort(rows)
            query_inds.append(rows[order] + i * num_queries)
            gt_inds.append(cols[order] + gt_offsets[i])
        inds = np.concatenate(
            [np.zeros((2, 0), np.int64)] + [
                np.stack([q, g]).astype(np.int64)
                for q, g in zip(query_inds, gt_inds)
            ],
            axis=1)
        inds = torch.from_numpy(inds).to(cls_scores.device)
        return StageMatch(inds[0], inds[1])

    def _match_costs(self, cls_scores: Tensor, boxes: Tensor,
                     gt: InstanceData) -> Tensor:
        """mmdet's ``HungarianAssigner`` cost of one image, (N, n_gt)."""
        pred = InstanceData(scores=cls_scores, bboxes=boxes)
        img_meta = dict(img_shape=gt.img_shape)
        return torch.stack([
            match_cost(
                pred_instances=pred, gt_instances=gt, img_meta=img_meta)
            for match_cost in self.assigner.match_costs
        ]).sum(dim=0)

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
        if get_world_size() > 1:
            avg_factor = reduce_mean(
                torch.tensor(float(num_gts),
                             device=device)).clamp_min(1).item()
        else:  # the same number, without a host sync
            avg_factor = max(float(np.float32(num_gts)), 1.0)
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
        if match.query_inds.numel() == 0:
            # keep the graph connected (no matched person in the batch)
            return out.cls_scores.sum() * 0
        # each matched query's row among the decoded ones, told by how the
        # head decoded (comparing the indices would be a host sync)
        if out.decoded is match.query_inds:  # exactly the matched queries
            rows = torch.arange(
                match.query_inds.numel(), device=match.query_inds.device)
        elif out.decoded.numel() == out.cls_scores.shape[:2].numel():
            rows = match.query_inds  # every query, in order
        else:
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
