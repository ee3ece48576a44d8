from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import MODELS
from mmpose.utils.typing import ConfigType, OptConfigType, Predictions
from ..layers.keypoint_decoder import COCO_PARTS_7, check_part_groups
from ..utils import mmdet_cfg

StageOutput = Dict[str, Tensor]


def boxes_to_rois(boxes: Tensor, batch_inds: Tensor) -> Tensor:
    """Stack (n, 4) xyxy boxes with their image indices into (n, 5) RoIs."""
    return torch.cat([batch_inds[:, None].to(boxes.dtype), boxes], dim=1)


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
    """Inverse of :func:`keypoints_to_box_frame`: ``(μ + 0.5) * w + x1``."""
    xy1 = boxes[..., None, :2]
    wh = boxes[..., None, 2:] - boxes[..., None, :2]
    return (coords + 0.5) * wh + xy1


def keypoint_scores_from_sigma(sigma_logits: Tensor) -> Tensor:
    """Keypoint confidence ``mean over x, y of 1 - sigma``, (n, K), from the
    RLE sigma logits (n, K, 2); the pose score is ``sigmoid(cls)`` times its
    mean over K, hence never above the class probability."""
    return (1 - sigma_logits.sigmoid()).mean(-1)


@MODELS.register_module()
class QueryPoseHead(BaseHead):
    """QueryPose: sparse multi-person pose regression (NeurIPS 2022).

    N learnable proposal boxes and instance queries Q_I, and M learnable part
    queries Q_P per person, pass through S stages. In stage s the box decoder
    (mmdet ``DIIHead`` on 7x7 RoIs of P2-P5) refines Q_I, classifies and
    moves the boxes; the keypoint decoder (:class:`KeypointDecoderStage` on
    14x14 RoIs of P2 at the new boxes) refines Q_I and Q_P and regresses
    box-relative keypoints with RLE. Every stage is matched (Hungarian, on
    boxes) and supervised. Inference keeps the top ``max_per_img`` persons by
    ``sigmoid(cls) * mean_k(1 - σ_k)``: no NMS, no grouping.

    Args:
        num_keypoints (int): K. Defaults to 17.
        num_queries (int): N proposals. Defaults to 100.
        num_stages (int): S. Defaults to 6.
        in_channels (int): FPN channels and Q_I size. Defaults to 256.
        part_groups (list[list[int]]): Keypoint indices of each part.
            Defaults to the 7 rigid parts of COCO (scheme (c)).
        part_dim (int): d_p. Defaults to 128.
        box_roi_extractor (dict): mmdet RoI extractor on P2-P5 (7x7).
        pose_roi_extractor (dict): mmdet RoI extractor on P2 (14x14).
        box_decoder (dict): mmdet ``DIIHead`` config, one per stage.
        keypoint_decoder (dict): :class:`KeypointDecoderStage` config, one
            per stage; ``part_groups``, ``num_keypoints``, ``in_channels``
            and ``part_dim`` are filled in from this head.
        assigner (dict): mmdet assigner (Hungarian on focal/L1/GIoU costs).
        loss_cls, loss_bbox, loss_iou (dict): mmdet losses, averaged over
            the number of GT persons.
        loss_keypoint (dict): :class:`QueryPoseRLELoss`, averaged over the
            number of GT persons times K.
        instance_query_flow (str): ``'serial'`` (Fig. 3(b)): the Q_I that the
            keypoint decoder refines goes on to the next stage's box decoder.
            ``'box_only'`` (Fig. 3(a)): the next box decoder receives the Q_I
            of this stage's box decoder; the keypoint decoder's refinement is
            used only inside it. Without a Q_I update in the keypoint decoder
            (the light version) both are the same. Defaults to ``'serial'``.
        decode_matched_only (bool): In training, run the keypoint decoder only
            on the queries matched at that stage (much cheaper). Allowed only
            where it is exact: the light version or ``'box_only'`` flow. With
            the serial flow and a Q_I update, the next stage's classifier
            would see which queries were matched (only they were refined by
            the keypoint decoder) and learn that instead of the image:
            measured on the quick-start model, stage-2/3 focal losses fell to
            0.001 while every query scored alike at inference (AP 0).
            Defaults to False: every query is decoded, as in inference.
        max_per_img (int): Persons kept per image at inference.
            Defaults to 100.
    """

    def __init__(
        self,
        num_keypoints: int = 17,
        num_queries: int = 100,
        num_stages: int = 6,
        in_channels: int = 256,
        part_groups: Sequence[Sequence[int]] = COCO_PARTS_7,
        part_dim: int = 128,
        box_roi_extractor: ConfigType = dict(
            type='SingleRoIExtractor',
            roi_layer=dict(
                type='RoIAlign', output_size=7, sampling_ratio=2,
                aligned=True),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        pose_roi_extractor: ConfigType = dict(
            type='SingleRoIExtractor',
            roi_layer=dict(
                type='RoIAlign', output_size=14, sampling_ratio=2,
                aligned=True),
            out_channels=256,
            featmap_strides=[4]),
        box_decoder: ConfigType = dict(
            type='DIIHead',
            num_classes=1,
            num_ffn_fcs=2,
            num_heads=8,
            num_cls_fcs=1,
            num_reg_fcs=3,
            feedforward_channels=2048,
            in_channels=256,
            dropout=0.0,
            ffn_act_cfg=dict(type='ReLU', inplace=True),
            dynamic_conv_cfg=dict(
                type='DynamicConv',
                in_channels=256,
                feat_channels=64,
                out_channels=256,
                input_feat_shape=7,
                act_cfg=dict(type='ReLU', inplace=True),
                norm_cfg=dict(type='LN')),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                clip_border=False,
                target_means=[0., 0., 0., 0.],
                target_stds=[0.5, 0.5, 1., 1.])),
        keypoint_decoder: ConfigType = dict(type='KeypointDecoderStage'),
        assigner: ConfigType = dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ]),
        loss_cls: ConfigType = dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_bbox: ConfigType = dict(type='L1Loss', loss_weight=5.0),
        loss_iou: ConfigType = dict(type='GIoULoss', loss_weight=2.0),
        loss_keypoint: ConfigType = dict(
            type='QueryPoseRLELoss', loss_weight=1.0),
        instance_query_flow: str = 'serial',
        decode_matched_only: bool = False,
        max_per_img: int = 100,
        init_cfg: OptConfigType = None,
    ) -> None:
        super().__init__(init_cfg)
        check_part_groups(part_groups, num_keypoints)
        if instance_query_flow not in ('serial', 'box_only'):
            raise ValueError("instance_query_flow must be 'serial' (Fig. 3b) "
                             f"or 'box_only' (Fig. 3a), got "
                             f'{instance_query_flow!r}')
        updates_instance_query = keypoint_decoder.get(
            'update_instance_query', True)
        if (decode_matched_only and instance_query_flow == 'serial'
                and updates_instance_query):
            raise ValueError(
                'decode_matched_only=True with the serial Q_I flow and a Q_I '
                'update in the keypoint decoder leaks the matching into the '
                'next stage\'s classifier (only matched queries are refined '
                'in training, all of them at inference); use '
                'decode_matched_only=False, the light version '
                "(keypoint_decoder.update_instance_query=False) or "
                "instance_query_flow='box_only'")
        self.instance_query_flow = instance_query_flow
        self.num_keypoints = num_keypoints
        self.num_queries = num_queries
        self.num_stages = num_stages
        self.in_channels = in_channels
        self.num_parts = len(part_groups)
        self.part_dim = part_dim
        self.decode_matched_only = decode_matched_only
        self.max_per_img = max_per_img

        self.init_proposal_bboxes = nn.Embedding(num_queries, 4)
        self.init_proposal_features = nn.Embedding(num_queries, in_channels)
        self.init_part_queries = nn.Embedding(self.num_parts, part_dim)

        self.box_roi_extractor = MMDET_MODELS.build(
            mmdet_cfg(box_roi_extractor))
        self.pose_roi_extractor = MMDET_MODELS.build(
            mmdet_cfg(pose_roi_extractor))
        self.num_box_levels = len(self.box_roi_extractor.featmap_strides)
        pose_roi_size = self.pose_roi_extractor.roi_layers[0].output_size
        decoder_roi_size = keypoint_decoder.get('roi_size', 14)
        if tuple(pose_roi_size) != (decoder_roi_size, decoder_roi_size):
            raise ValueError(
                'pose_roi_extractor.roi_layer.output_size '
                f'({pose_roi_size}) must match keypoint_decoder.roi_size '
                f'({decoder_roi_size}): set both to the same side')
        kpt_cfg = dict(keypoint_decoder)
        kpt_cfg.update(
            part_groups=[list(g) for g in part_groups],
            num_keypoints=num_keypoints,
            in_channels=in_channels,
            part_dim=part_dim)
        self.box_decoders = nn.ModuleList(
            MMDET_MODELS.build(mmdet_cfg(box_decoder))
            for _ in range(num_stages))
        self.keypoint_decoders = nn.ModuleList(
            MODELS.build(kpt_cfg) for _ in range(num_stages))

        self.assigner = MMDET_TASK_UTILS.build(mmdet_cfg(assigner))
        self.loss_cls = MMDET_MODELS.build(mmdet_cfg(loss_cls))
        self.loss_bbox = MMDET_MODELS.build(mmdet_cfg(loss_bbox))
        self.loss_iou = MMDET_MODELS.build(mmdet_cfg(loss_iou))
        self.loss_keypoint = MODELS.build(loss_keypoint)

    def init_weights(self) -> None:
        super().init_weights()
        # Sparse R-CNN: every proposal starts as the whole image.
        nn.init.constant_(self.init_proposal_bboxes.weight[:, :2], 0.5)
        nn.init.constant_(self.init_proposal_bboxes.weight[:, 2:], 1.0)
        for module in (*self.box_decoders, *self.keypoint_decoders):
            module.init_weights()

    # ------------------------------------------------------------------
    # the stage loop
    # ------------------------------------------------------------------
    def run_stages(
        self,
        feats: Sequence[Tensor],
        img_whwh: Tensor,
        select_queries: Optional[Callable[[int, Tensor, Tensor],
                                          Tensor]] = None
    ) -> List[StageOutput]:
        """Run all stages.

        Args:
            feats (Sequence[Tensor]): FPN levels P2.. (B, C, H_l, W_l).
            img_whwh (Tensor): Per image (w, h, w, h) of the unpadded input,
                (B, 4).
            select_queries (callable, optional): ``f(stage, cls_scores,
                boxes) -> flat indices`` of the queries (in ``B * N``) whose
                keypoints this stage decodes; all queries if None.

        Returns:
            list[dict]: Per stage, ``cls_scores`` (B, N, 1), ``boxes``
            (B, N, 4) xyxy input pixels, ``decoded`` (n,) flat indices,
            ``coords`` and ``sigma_logits`` (n, K, 2) of those queries, and
            ``keypoint_boxes`` (n, 4), the detached boxes they are relative
            to.
        """
        self._check_feats(feats)
        # mmcv 2.1's RoIAlign reads its input as NCHW-contiguous whatever its
        # strides: channels-last maps would give silently wrong RoIs
        feats = [feat.contiguous() for feat in feats]
        batch_size, num_queries = img_whwh.size(0), self.num_queries
        proposal_wh = self.init_proposal_bboxes.weight[:, 2:]
        if not (proposal_wh > 0).all():
            # mmcv's CPU RoIAlign would stop on an internal assert instead
            raise ValueError(
                'QueryPoseHead.init_proposal_bboxes has non-positive (or '
                'NaN) widths/heights: call model.init_weights() after '
                'building the model (mmengine\'s Runner does), or load a '
                'trained checkpoint')
        boxes = bbox_cxcywh_to_xyxy(self.init_proposal_bboxes.weight)
        boxes = boxes[None] * img_whwh[:, None]
        instance_queries = self.init_proposal_features.weight[None].expand(
            batch_size, -1, -1)
        part_queries = self.init_part_queries.weight[None].expand(
            batch_size * num_queries, -1, -1)
        batch_inds = torch.arange(
            batch_size, device=img_whwh.device).repeat_interleave(num_queries)
        box_feats_levels = feats[:self.num_box_levels]

        outputs = []
        for stage in range(self.num_stages):
            flat_boxes = boxes.reshape(-1, 4)
            rois = boxes_to_rois(flat_boxes, batch_inds)
            roi_feats = self.box_roi_extractor(box_feats_levels, rois)
            box_decoder = self.box_decoders[stage]
            cls_scores, deltas, instance_queries, _ = box_decoder(
                roi_feats, instance_queries)
            new_boxes = box_decoder.bbox_coder.decode(
                flat_boxes, deltas.reshape(-1, 4)).view(batch_size,
                                                        num_queries, 4)

            if select_queries is None:
                decoded = torch.arange(
                    batch_size * num_queries, device=img_whwh.device)
            else:
                decoded = select_queries(stage, cls_scores, new_boxes)
            keypoint_boxes = new_boxes.detach().reshape(-1, 4)[decoded]
            flat_instance = instance_queries.reshape(-1, self.in_channels)
            if decoded.numel() > 0:
                pose_rois = self.pose_roi_extractor(
                    feats[:1], boxes_to_rois(keypoint_boxes,
                                             batch_inds[decoded]))
                kpt = self.keypoint_decoders[stage](pose_rois,
                                                    flat_instance[decoded],
                                                    part_queries[decoded])
                flat_instance = flat_instance.index_copy(
                    0, decoded, kpt['instance_queries'])
                part_queries = part_queries.index_copy(0, decoded,
                                                       kpt['part_queries'])
                coords, sigma_logits = kpt['coords'], kpt['sigma_logits']
            else:
                coords = flat_instance.new_zeros(0, self.num_keypoints, 2)
                sigma_logits = coords
            if self.instance_query_flow == 'serial':
                instance_queries = flat_instance.view(batch_size, num_queries,
                                                      -1)
            outputs.append(
                dict(
                    cls_scores=cls_scores,
                    boxes=new_boxes,
                    decoded=decoded,
                    coords=coords,
                    sigma_logits=sigma_logits,
                    keypoint_boxes=keypoint_boxes))
            # Sparse R-CNN: no gradient flows through the proposal boxes.
            boxes = new_boxes.detach()
        return outputs

    def _check_feats(self, feats: Sequence[Tensor]) -> None:
        """Fail clearly on a neck that does not fit the head."""
        needed = max(self.num_box_levels, 1)
        if len(feats) < needed:
            raise ValueError(
                f'QueryPoseHead needs {needed} feature levels (P2..) for its '
                f'box RoI extractor, got {len(feats)}; set the neck\'s '
                'num_outs accordingly')
        for level, feat in enumerate(feats[:needed]):
            if feat.size(1) != self.in_channels:
                raise ValueError(
                    f'feature level {level} has {feat.size(1)} channels but '
                    f'QueryPoseHead.in_channels is {self.in_channels}; make '
                    'the neck\'s out_channels and the head\'s in_channels '
                    '(and its RoI extractors\' out_channels) equal')

    @staticmethod
    def _img_whwh(batch_data_samples, device) -> Tensor:
        """(w, h, w, h) of each unpadded input image, (B, 4)."""
        sizes = []
        for sample in batch_data_samples:
            h, w = sample.metainfo['img_shape'][:2]
            sizes.append([w, h, w, h])
        return torch.tensor(sizes, dtype=torch.float32, device=device)

    def forward(self, feats: Tuple[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Predict for every query of every image (the ``tensor`` mode).

        The whole padded input is taken as the image, since no meta
        information is given.

        Args:
            feats (tuple[Tensor]): FPN levels P2.. (B, C, H_l, W_l).

        Returns:
            tuple[Tensor, Tensor, Tensor]: Class logits (B, N, 1), boxes
            (B, N, 4) and keypoints (B, N, K, 2), in input pixels, of the
            last stage.
        """
        stride = self.pose_roi_extractor.featmap_strides[0]
        b, _, h, w = feats[0].shape
        img_whwh = feats[0].new_tensor([w, h, w, h]) * stride
        last = self.run_stages(feats, img_whwh.expand(b, 4))[-1]
        keypoints = keypoints_from_box_frame(last['coords'],
                                             last['keypoint_boxes'])
        return last['cls_scores'], last['boxes'], keypoints.view(
            b, self.num_queries, self.num_keypoints, 2)

    # ------------------------------------------------------------------
    # inference
    @property
    def keypoints_feed_box_decoders(self) -> bool:
        """Whether a keypoint decoder's Q_I update reaches the next stage's
        box decoder (the full version with the serial Q_I flow)."""
        return (self.instance_query_flow == 'serial'
                and self.keypoint_decoders[0].update_instance_query)

    def _query_offsets(self, img_whwh: Tensor) -> Tensor:
        """First flat query index of each image, (B, 1)."""
        return torch.arange(
            img_whwh.size(0), device=img_whwh.device)[:, None] * \
            self.num_queries

    def _run_stages_topk_per_stage(self, feats: Sequence[Tensor],
                                   img_whwh: Tensor,
                                   decode_topk: int) -> StageOutput:
        """Decode each stage's ``decode_topk`` best-scored queries."""
        offsets = self._query_offsets(img_whwh)

        def select(stage: int, cls_scores: Tensor, boxes: Tensor) -> Tensor:
            top = cls_scores[..., 0].topk(decode_topk, dim=1).indices
            return (top + offsets).flatten().sort().values

        return self.run_stages(feats, img_whwh, select)[-1]

    def _run_stages_topk_exact(self, feats: Sequence[Tensor],
                               img_whwh: Tensor, decode_topk: int,
                               max_per_img: int) -> StageOutput:
        """Decode the final ``decode_topk`` queries in every stage; equal to
        full decoding when the box path does not read the keypoints."""
        offsets = self._query_offsets(img_whwh)
        none = offsets.new_zeros(0)
        boxes_only = self.run_stages(feats, img_whwh, lambda *_: none)[-1]
        final_prob = boxes_only['cls_scores'][..., 0].sigmoid()
        top = final_prob.topk(decode_topk, dim=1).indices
        decoded = (top + offsets).flatten().sort().values
        last = self.run_stages(feats, img_whwh, lambda *_: decoded)[-1]

        pose_scores = final_prob.new_full(final_prob.shape, -1.0)
        pose_scores.view(-1)[decoded] = final_prob.view(-1)[decoded] * \
            keypoint_scores_from_sigma(last['sigma_logits']).mean(-1).to(
                final_prob.dtype)
        kept_lowest = pose_scores.topk(max_per_img, dim=1).values[:, -1:]
        could_rank = final_prob > kept_lowest
        could_rank.view(-1)[decoded] = True
        if could_rank.sum() > decoded.numel():
            # Decoding more queries can only raise the lowest kept score, so
            # after this pass no query left out can outrank a kept one.
            decoded = could_rank.flatten().nonzero()[:, 0]
            last = self.run_stages(feats, img_whwh, lambda *_: decoded)[-1]
        return last

    # ------------------------------------------------------------------
    def predict(self,
                feats: Tuple[Tensor],
                batch_data_samples,
                test_cfg: ConfigType = {}) -> Predictions:
        """Top-k persons per image, NMS-free, in input-frame pixels.

        Returns:
            list[InstanceData]: Per image, numpy ``keypoints`` (n, K, 2),
            ``keypoint_scores`` (n, K) = mean over x, y of ``1 - σ``,
            ``bboxes`` (n, 4) xyxy and ``bbox_scores`` (n,) = the pose score
            ``sigmoid(cls) * mean_k(keypoint_scores)`` the persons are ranked
            by (CocoMetric's ``score_mode='bbox'`` reads it).

        ``test_cfg.decode_topk`` (fast inference, off by default): run the
        keypoint decoder only on ``decode_topk`` queries per image.

        - When keypoint decoding does not feed the box decoders (the light
          version, ``keypoint_decoder.update_instance_query=False``, or
          ``instance_query_flow='box_only'``), the box decoders run first,
          the queries with the ``decode_topk`` highest final class scores
          are decoded in every stage, and the result equals full decoding:
          a pose score is ``sigmoid(cls)`` times a number in [0, 1], so a
          query left out cannot outrank the ``max_per_img`` kept ones when
          its class probability is below their lowest pose score; the
          queries above it are decoded in one more pass.
        - Otherwise (the full version: the keypoint decoder updates Q_I,
          which the next box decoder reads), each stage decodes the
          ``decode_topk`` queries with its own highest class scores; a
          query left out keeps its Q_I and part queries of the last stage
          that decoded it. This changes the output: the README gives the
          measured speed-up and AP change.
        """
        if test_cfg.get('flip_test', False):
            raise ValueError('QueryPoseHead does not implement flip test; '
                             'set test_cfg.flip_test=False')
        img_whwh = self._img_whwh(batch_data_samples, feats[0].device)
        batch_size = img_whwh.size(0)
        num_queries, k = self.num_queries, self.num_keypoints
        max_per_img = min(
            test_cfg.get('max_per_img', self.max_per_img), num_queries)
        decode_topk = test_cfg.get('decode_topk', None)
        if decode_topk is not None and decode_topk < num_queries:
            if decode_topk < max_per_img:
                raise ValueError(f'test_cfg.decode_topk ({decode_topk}) must '
                                 f'be >= max_per_img ({max_per_img})')
            if self.keypoints_feed_box_decoders:
                last = self._run_stages_topk_per_stage(feats, img_whwh,
                                                       decode_topk)
            else:
                last = self._run_stages_topk_exact(feats, img_whwh,
                                                   decode_topk, max_per_img)
        else:
            last = self.run_stages(feats, img_whwh)[-1]
        cls_prob = last['cls_scores'][..., 0].sigmoid()
        decoded = last['decoded']
        # queries whose keypoints were not decoded rank below every other
        keypoint_scores = cls_prob.new_zeros(batch_size * num_queries, k)
        keypoint_scores[decoded] = keypoint_scores_from_sigma(
            last['sigma_logits']).to(cls_prob.dtype)
        keypoint_scores = keypoint_scores.view(batch_size, num_queries, k)
        pose_scores = cls_prob * keypoint_scores.mean(-1)
        if decoded.numel() < batch_size * num_queries:
            not_decoded = torch.ones_like(pose_scores, dtype=torch.bool)
            not_decoded.view(-1)[decoded] = False
            pose_scores = pose_scores.masked_fill(not_decoded, -1.0)
        keypoints = cls_prob.new_zeros(batch_size * num_queries, k, 2)
        keypoints[decoded] = keypoints_from_box_frame(
            last['coords'], last['keypoint_boxes']).to(cls_prob.dtype)
        keypoints = keypoints.view(batch_size, num_queries, k, 2)

        preds = []
        for i in range(batch_size):
            scores, order = pose_scores[i].topk(max_per_img)
            preds.append(
                InstanceData(
                    keypoints=keypoints[i, order].float().cpu().numpy(),
                    keypoint_scores=keypoint_scores[i, order].float().cpu(
                    ).numpy(),
                    bboxes=last['boxes'][i, order].float().cpu().numpy(),
                    bbox_scores=scores.float().cpu().numpy()))
        return preds

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def _gt_instances(self, batch_data_samples, device) -> List[InstanceData]:
        """Ground truth as tensors: boxes, labels (0), keypoints, visible."""
        gts = []
        for sample in batch_data_samples:
            gt = sample.gt_instances
            n = len(gt.bboxes) if 'bboxes' in gt else 0
            if n and np.asarray(gt.keypoints).shape[1] != self.num_keypoints:
                raise ValueError(
                    f'{sample.metainfo.get("img_path", "a sample")} has '
                    f'{np.asarray(gt.keypoints).shape[1]} keypoints per '
                    f'person but QueryPoseHead.num_keypoints is '
                    f'{self.num_keypoints}; set model.head.num_keypoints '
                    '(and part_groups) to match the dataset')
            if n and not (np.isfinite(np.asarray(gt.bboxes)).all()
                          and np.isfinite(np.asarray(gt.keypoints)).all()):
                # the matcher's costs would be NaN and scipy's assignment
                # would fail with 'invalid numeric entries'
                raise ValueError(
                    f'{sample.metainfo.get("img_path", "a sample")} has a '
                    'non-finite (NaN/inf) ground-truth box or keypoint; '
                    'fix the annotation, or add FilterInstances to the train '
                    'pipeline, which names the annotation id')
            gts.append(
                InstanceData(
                    bboxes=torch.as_tensor(
                        np.asarray(gt.bboxes, np.float32).reshape(n, 4)
                        if n else np.zeros((0, 4), np.float32),
                        device=device),
                    labels=torch.zeros(n, dtype=torch.long, device=device),
                    keypoints=torch.as_tensor(
                        np.asarray(gt.keypoints, np.float32).reshape(
                            n, self.num_keypoints, 2) if n else np.zeros(
                                (0, self.num_keypoints, 2), np.float32),
                        device=device),
                    keypoints_visible=torch.as_tensor(
                        np.asarray(gt.keypoints_visible, np.float32).reshape(
                            n, self.num_keypoints)
                        if n else np.zeros((0, self.num_keypoints),
                                           np.float32),
                        device=device)))
        return gts

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples,
             train_cfg: ConfigType = {}) -> dict:
        """Deep-supervised set losses of every stage.

        Returns:
            dict[str, Tensor]: ``s{i}.loss_cls``, ``s{i}.loss_bbox``,
            ``s{i}.loss_iou`` and ``s{i}.loss_kpt`` for each stage i.
        """
        device = feats[0].device
        img_whwh = self._img_whwh(batch_data_samples, device)
        gts = self._gt_instances(batch_data_samples, device)
        batch_size, num_queries = len(gts), self.num_queries
        matches: List[Tuple[Tensor, Tensor]] = []

        def match(stage: int, cls_scores: Tensor, boxes: Tensor) -> Tensor:
            if not (torch.isfinite(cls_scores).all()
                    and torch.isfinite(boxes).all()):
                # scipy's assignment would fail deep inside with 'cost
                # matrix is infeasible'; say where it comes from instead
                raise FloatingPointError(
                    f'stage {stage} of QueryPoseHead predicted non-finite '
                    'class scores or boxes, so they cannot be matched; the '
                    'training diverged (lower the lr, keep clip_grad) or '
                    'the input holds NaN/inf')
            query_inds, gt_inds = [], []
            for i, gt in enumerate(gts):
                pred = InstanceData(
                    scores=cls_scores[i].detach(),
                    bboxes=boxes[i].detach())
                img_meta = dict(img_shape=(img_whwh[i, 1].item(),
                                           img_whwh[i, 0].item()))
                assigned = self.assigner.assign(pred, gt, img_meta=img_meta)
                pos = torch.nonzero(assigned.gt_inds > 0).squeeze(1)
                query_inds.append(pos + i * num_queries)
                gt_inds.append(assigned.gt_inds[pos] - 1)
            matches.append((torch.cat(query_inds), torch.cat(gt_inds)))
            if self.decode_matched_only:
                return matches[-1][0]
            return torch.arange(batch_size * num_queries, device=device)

        outputs = self.run_stages(feats, img_whwh, match)

        num_gts = sum(len(gt) for gt in gts)
        avg_factor = reduce_mean(
            torch.tensor(float(num_gts), device=device)).clamp_min(1).item()
        gt_offsets = torch.tensor([0] + [len(gt) for gt in gts],
                                  device=device).cumsum(0)[:-1]
        gt_boxes = torch.cat([gt.bboxes for gt in gts])
        gt_keypoints = torch.cat([gt.keypoints for gt in gts])
        gt_visible = torch.cat([gt.keypoints_visible for gt in gts])

        losses = dict()
        for stage, (out, (query_inds, gt_local)) in enumerate(
                zip(outputs, matches)):
            gt_inds = gt_local + gt_offsets[query_inds // num_queries]
            labels = torch.ones(
                batch_size * num_queries, dtype=torch.long, device=device)
            labels[query_inds] = 0
            losses[f's{stage}.loss_cls'] = self.loss_cls(
                out['cls_scores'].reshape(-1, 1),
                labels,
                avg_factor=avg_factor)

            pos_boxes = out['boxes'].reshape(-1, 4)[query_inds]
            whwh = img_whwh[query_inds // num_queries]
            losses[f's{stage}.loss_bbox'] = self.loss_bbox(
                pos_boxes / whwh,
                gt_boxes[gt_inds] / whwh,
                avg_factor=avg_factor)
            losses[f's{stage}.loss_iou'] = self.loss_iou(
                pos_boxes, gt_boxes[gt_inds], avg_factor=avg_factor)
            losses[f's{stage}.loss_kpt'] = self._keypoint_loss(
                out, query_inds, gt_keypoints[gt_inds], gt_visible[gt_inds],
                avg_factor)
        return losses

    def _keypoint_loss(self, out: StageOutput, query_inds: Tensor,
                       gt_keypoints: Tensor, gt_visible: Tensor,
                       avg_factor: float) -> Tensor:
        """RLE on the matched queries, relative to their predicted boxes.

        Keypoints that are not labelled or lie outside the (detached)
        predicted box get weight 0 (QueryPose §3.4).
        """
        if self.decode_matched_only:
            rows = torch.arange(len(query_inds), device=query_inds.device)
        else:
            rows = query_inds  # every query was decoded, in order
        coords = out['coords'][rows]
        if coords.numel() == 0:
            # keep the graph connected (no matched person in the batch)
            return out['cls_scores'].sum() * 0
        target = keypoints_to_box_frame(gt_keypoints,
                                        out['keypoint_boxes'][rows])
        inside = (target.abs() <= 0.5).all(dim=-1)
        weight = ((gt_visible > 0) & inside).float()
        return self.loss_keypoint(
            coords,
            out['sigma_logits'][rows],
            target.detach(),
            weight,
            avg_factor=avg_factor * self.num_keypoints)
