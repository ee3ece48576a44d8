from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import ModuleList
from torch import Tensor

from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import MODELS
from mmpose.utils.typing import ConfigType, OptConfigType, Predictions
from ..losses.set_criterion import pack_gt_instances
from ..task_modules.query_selection import top_pose_tensors, top_poses
from ..utils import (QuerySelector, QueryState, StageOutput, boxes_to_rois,
                     check_finite_stage, check_fpn_feats, check_part_groups,
                     check_positive_ints, checked_train_regime, image_whwh,
                     instance_query_flows, mmdet_cfg, pose_roi_size,
                     rename_keys, run_in_float32)

# state-dict keys of checkpoints written before the head was split
_RENAMED_IN_VERSION_2 = {
    'init_proposal_bboxes.': 'proposals.init_proposal_bboxes.',
    'init_proposal_features.': 'proposals.init_proposal_features.',
    'init_part_queries.': 'proposals.init_part_queries.',
    'loss_keypoint.': 'criterion.loss_keypoint.',
}


@MODELS.register_module()
class QueryPoseHead(BaseHead):
    """QueryPose: sparse multi-person pose regression (NeurIPS 2022).

    N learnable proposals (:class:`LearnableProposals`: boxes, instance
    queries Q_I, M part queries Q_P each) pass through S stages
    (:meth:`_forward_stage`). In stage s the box decoder (mmdet ``DIIHead``
    on 7x7 RoIs of P2-P5) refines Q_I, classifies and moves the boxes; the
    keypoint decoder (:class:`KeypointDecoderStage` on RoIs of P2 at the new
    boxes) refines Q_P (and Q_I) and regresses box-frame keypoints with RLE.
    Training matches and supervises every stage
    (:class:`QueryPoseCriterion`); inference keeps the top ``max_per_img``
    persons by ``sigmoid(cls) * mean_k(1 - σ_k)``: no NMS, no grouping.

    Args:
        num_keypoints (int): K.
        part_groups (list[list[int]]): Keypoint indices of each part.
        num_queries (int): N proposals.
        num_stages (int): S.
        in_channels (int): FPN channels and Q_I size C.
        part_dim (int): d_p.
        box_roi_extractor (dict): mmdet RoI extractor on P2-P5.
        pose_roi_extractor (dict): mmdet RoI extractor on P2.
        box_decoder (dict): mmdet ``DIIHead``, one per stage.
        keypoint_decoder (dict): :class:`KeypointDecoderStage`, one per
            stage; ``part_groups``, ``num_keypoints``, ``in_channels``,
            ``part_dim`` and ``roi_size`` are filled in.
        criterion (dict): :class:`QueryPoseCriterion` (``num_keypoints``
            filled in).
        max_per_img (int): Persons kept per image at inference
            (``test_cfg.max_per_img`` overrides it).
        proposals (dict): :class:`LearnableProposals` (sizes filled in).
        instance_query_flow (str | dict): ``'serial'`` (Fig. 3(b)): the Q_I
            that the keypoint decoder refines goes on to the next stage's box
            decoder (in the ``'matched_only'`` regime, for the matched
            queries only). ``'box_only'`` (Fig. 3(a)): the next box decoder
            receives the Q_I of this stage's box decoder. Without a Q_I
            update in the keypoint decoder (the light version) both are the
            same. A dict ``dict(train=..., test=...)`` sets the two phases
            apart: the official v1 code trains ``'serial'`` and tests
            ``'box_only'``; the paper's code is ``'serial'`` in both.
        train_regime (str): Which queries each stage decodes in training.
            ``'all_queries'`` (the paper's official code, e249749): every
            query is decoded, as at inference, and keeps its own part
            queries; each stage's losses are taken on its matched queries.
            ``'matched_only'`` (the official v1 code, bf0814f): each stage
            is matched right after its box decoder, only the matched queries
            go through the keypoint decoder, and the part queries pass to
            the next stage by position among the matched queries of the
            batch (ordered by image, then query); about 4x cheaper a step.
            With the full version's serial Q_I flow in training it lets the
            next stage read which queries were matched (warned at build).
            ``'official'``, its former name, is read as ``'matched_only'``.
        wh_ratio_clip (float): A box side grows or shrinks at most by
            ``1 / wh_ratio_clip`` per stage (mmdet's ``delta2bbox``).
        growth_only_clip (bool): Clamp only growth (the official code, with
            ``wh_ratio_clip=16 / 100000``: log(100000 / 16)); a box may
            shrink by any factor.
        keypoint_offset (float): Added to the predicted keypoints, in pixels
            of the original image: -0.5 for the official checkpoints, which
            learned detectron2's keypoints (COCO + 0.5).
    """
    _version = 2  # see _RENAMED_IN_VERSION_2

    def __init__(self,
                 num_keypoints: int,
                 part_groups: Sequence[Sequence[int]],
                 num_queries: int,
                 num_stages: int,
                 in_channels: int,
                 part_dim: int,
                 box_roi_extractor: ConfigType,
                 pose_roi_extractor: ConfigType,
                 box_decoder: ConfigType,
                 keypoint_decoder: ConfigType,
                 criterion: ConfigType,
                 max_per_img: int,
                 proposals: ConfigType = dict(type='LearnableProposals'),
                 instance_query_flow: Union[str, dict] = 'serial',
                 train_regime: str = 'all_queries',
                 wh_ratio_clip: float = 16 / 1000,
                 growth_only_clip: bool = False,
                 keypoint_offset: float = 0.0,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg)
        check_positive_ints(
            'model.head',
            num_keypoints=num_keypoints,
            num_queries=num_queries,
            num_stages=num_stages,
            in_channels=in_channels,
            part_dim=part_dim,
            max_per_img=max_per_img)
        check_part_groups(part_groups, num_keypoints)
        self.instance_query_flows = instance_query_flows(instance_query_flow)
        self.num_keypoints = num_keypoints
        self.num_queries = num_queries
        self.num_stages = num_stages
        self.in_channels = in_channels
        self.max_per_img = max_per_img
        self.wh_ratio_clip = wh_ratio_clip
        self.growth_only_clip = growth_only_clip
        self.keypoint_offset = keypoint_offset

        self.proposals = MODELS.build(
            dict(
                proposals,
                num_queries=num_queries,
                instance_dim=in_channels,
                num_parts=len(part_groups),
                part_dim=part_dim))
        self.box_roi_extractor = MMDET_MODELS.build(
            mmdet_cfg(box_roi_extractor))
        self.pose_roi_extractor = MMDET_MODELS.build(
            mmdet_cfg(pose_roi_extractor))
        self.num_box_levels = len(self.box_roi_extractor.featmap_strides)
        kpt_cfg = dict(
            keypoint_decoder,
            part_groups=[list(g) for g in part_groups],
            num_keypoints=num_keypoints,
            in_channels=in_channels,
            part_dim=part_dim,
            roi_size=pose_roi_size(self.pose_roi_extractor, keypoint_decoder))
        self.box_decoders = ModuleList(
            MMDET_MODELS.build(mmdet_cfg(box_decoder))
            for _ in range(num_stages))
        self.keypoint_decoders = ModuleList(
            MODELS.build(kpt_cfg) for _ in range(num_stages))
        self.criterion = MODELS.build(
            dict(criterion, num_keypoints=num_keypoints))
        self.train_regime = checked_train_regime(
            train_regime, self.instance_query_flows['train'],
            self.keypoint_decoders[0].update_instance_query)

    @property
    def instance_query_flow(self) -> str:
        """The Q_I flow of the current phase (``self.training``)."""
        return self.instance_query_flows['train' if self.training else 'test']

    @property
    def keypoints_feed_box_decoders(self) -> bool:
        """Whether a keypoint decoder's Q_I update reaches the next stage's
        box decoder (the full version with the serial Q_I flow)."""
        return (self.instance_query_flow == 'serial'
                and self.keypoint_decoders[0].update_instance_query)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args,
                              **kwargs) -> None:
        if local_metadata.get('version', 1) < 2:
            rename_keys(state_dict, prefix, _RENAMED_IN_VERSION_2)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)

    # ------------------------------------------------------------------
    # the stages
    # ------------------------------------------------------------------
    def _box_stage(self, stage: int, feats: Sequence[Tensor],
                   state: QueryState,
                   batch_inds: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Stage ``stage``'s box decoder on every query: class logits
        (B, N, 1), boxes (B, N, 4) and its Q_I (B, N, C)."""
        batch_size, num_queries = state.boxes.shape[:2]
        flat_boxes = state.boxes.reshape(-1, 4)
        roi_feats = self.box_roi_extractor(
            feats[:self.num_box_levels], boxes_to_rois(flat_boxes, batch_inds))
        box_decoder = self.box_decoders[stage]
        cls_scores, deltas, instance_queries, _ = run_in_float32(
            box_decoder, roi_feats, state.instance_queries)
        boxes = self._decode_boxes(box_decoder.bbox_coder, flat_boxes,
                                   deltas.reshape(-1, 4)).view(
                                       batch_size, num_queries, 4)
        if not self.training:  # training: the matching checks (no sync)
            check_finite_stage(stage, cls_scores, boxes)
        return cls_scores, boxes, instance_queries

    def _keypoint_stage(self, stage: int, feats: Sequence[Tensor],
                        boxes: Tensor, instance_queries: Tensor,
                        part_queries: Tensor, part_inputs: Tensor,
                        decoded: Tensor, batch_inds: Tensor) -> tuple:
        """Stage ``stage``'s keypoint decoder on the ``decoded`` queries.

        ``boxes`` (B, N, 4) and ``instance_queries`` (B, N, C) are the box
        decoder's, ``part_queries`` (B * N, M, d_p) what each query holds,
        ``part_inputs`` (n, M, d_p) what the decoded ones read. Returns
        ``(coords, sigma_logits, keypoint_boxes, instance_queries,
        part_queries)``: the decoded queries' (n, K, 2), (n, K, 2) and
        (n, 4), and every query's Q_I (B * N, C) and part queries, the
        decoded ones updated.
        """
        keypoint_boxes = boxes.detach().reshape(-1, 4)[decoded]
        flat_instance = instance_queries.reshape(-1, self.in_channels)
        if decoded.numel() == 0:
            coords = flat_instance.new_zeros(0, self.num_keypoints, 2)
            return (coords, coords, keypoint_boxes, flat_instance,
                    part_queries)
        pose_rois = self.pose_roi_extractor(
            feats[:1], boxes_to_rois(keypoint_boxes, batch_inds[decoded]))
        kpt = self.keypoint_decoders[stage](pose_rois, flat_instance[decoded],
                                            part_inputs)
        return (kpt['coords'], kpt['sigma_logits'], keypoint_boxes,
                flat_instance.index_copy(0, decoded, kpt['instance_queries']),
                part_queries.index_copy(0, decoded, kpt['part_queries']))

    def _forward_stage(
            self, stage: int, feats: Sequence[Tensor], state: QueryState,
            batch_inds: Tensor, select: Optional[QuerySelector],
            parts_by_position: bool) -> Tuple[StageOutput, QueryState]:
        """Box decoder, then the keypoint decoder on the selected queries.

        ``feats`` are the FPN levels P2.. (B, C, H_l, W_l), ``state`` the
        previous stage's (or the proposals'), ``batch_inds`` (B * N,) the
        image of each flat query, ``select`` the queries to decode (all if
        None). The decoded queries read the part queries of the same query,
        or with ``parts_by_position`` those of the previous stage's decoded
        queries in order (the ``'matched_only'`` training). Returns this
        stage's predictions and what it hands on; queries left out keep
        their Q_I (of the box decoder) and the part queries of the last
        stage that decoded them.
        """
        cls_scores, boxes, instance_queries = self._box_stage(
            stage, feats, state, batch_inds)
        if select is None:
            decoded = torch.arange(
                batch_inds.size(0), device=batch_inds.device)
        else:
            decoded = select(stage, cls_scores, boxes)
        part_queries = state.part_queries
        if parts_by_position and state.decoded is not None:
            part_inputs = part_queries[state.decoded]
            if part_inputs.size(0) != decoded.numel():
                raise ValueError(
                    f'stage {stage} decodes {decoded.numel()} queries but '
                    f'stage {stage - 1} decoded {part_inputs.size(0)}; part '
                    'queries handed on by position need the same count '
                    '(one-to-one matching of the same persons)')
        else:
            part_inputs = part_queries[decoded]
        coords, sigma_logits, keypoint_boxes, flat_instance, part_queries = \
            self._keypoint_stage(stage, feats, boxes, instance_queries,
                                 part_queries, part_inputs, decoded,
                                 batch_inds)
        if self.instance_query_flow == 'serial':
            instance_queries = flat_instance.view_as(instance_queries)
        output = StageOutput(cls_scores, boxes, decoded, coords, sigma_logits,
                             keypoint_boxes)
        # Sparse R-CNN: no gradient flows through the proposal boxes.
        return output, QueryState(boxes.detach(), instance_queries,
                                  part_queries, decoded)

    def _decode_boxes(self, bbox_coder, boxes: Tensor,
                      deltas: Tensor) -> Tensor:
        """mmdet's ``delta2bbox`` with the head's clamp, (n, 4) -> (n, 4)."""
        if not self.growth_only_clip:
            return bbox_coder.decode(
                boxes, deltas, wh_ratio_clip=self.wh_ratio_clip)
        # growth only (the official clamp): bound the normalised log-sizes
        # from above here, and let the coder's symmetric clamp never bind
        mean = deltas.new_tensor(bbox_coder.means[2:])
        std = deltas.new_tensor(bbox_coder.stds[2:])
        max_log = (abs(np.log(self.wh_ratio_clip)) - mean) / std
        deltas = torch.cat(
            [deltas[:, :2],
             torch.minimum(deltas[:, 2:], max_log)], dim=1)
        return bbox_coder.decode(boxes, deltas, wh_ratio_clip=1e-30)

    def _start(self, feats: Sequence[Tensor], img_whwh: Tensor) -> tuple:
        """The checked features, the proposals' state and the image of
        each flat query (B * N,)."""
        check_fpn_feats(feats, self.num_box_levels, self.in_channels)
        # mmcv 2.1's RoIAlign reads its input as NCHW-contiguous whatever its
        # strides (channels-last maps would give silently wrong RoIs), and its
        # CPU kernel has no bfloat16 (under autocast the FPN gives bf16);
        # float64 stays float64
        feats = [
            feat.contiguous().to(
                torch.promote_types(feat.dtype, torch.float32))
            for feat in feats
        ]
        batch_inds = torch.arange(
            img_whwh.size(0),
            device=img_whwh.device).repeat_interleave(self.num_queries)
        return feats, QueryState(*self.proposals(img_whwh), None), batch_inds

    def run_stages_above(self, feats: Sequence[Tensor], img_whwh: Tensor,
                         score_thr: float) -> StageOutput:
        """The last stage, keypoints decoded only for the queries whose
        final class probability reaches ``score_thr``.

        A pose score is ``sigmoid(cls)`` times a number in [0, 1], so no
        other query can score ``score_thr``. Exact where the box path does
        not read the keypoint decoders (the light version or the
        ``'box_only'`` flow): the box decoders run once, every stage, then
        the keypoint decoders on their states.
        """
        if self.keypoints_feed_box_decoders:
            raise ValueError(
                'test_cfg.score_thr decodes the keypoints of the queries that '
                'can reach it after the box stages, which needs a box path '
                'that does not read the keypoint decoders: the light version '
                '(keypoint_decoder.update_instance_query=False) or '
                "instance_query_flow=dict(..., test='box_only'); this model "
                'hands the refined Q_I on at test time')
        feats, state, batch_inds = self._start(feats, img_whwh)
        box_states = []
        for stage in range(self.num_stages):
            cls_scores, boxes, instance_queries = self._box_stage(
                stage, feats, state, batch_inds)
            box_states.append((cls_scores, boxes, instance_queries))
            state = QueryState(boxes.detach(), instance_queries,
                               state.part_queries, None)
        decoded = torch.nonzero(
            cls_scores.reshape(-1).sigmoid() >= score_thr)[:, 0]
        part_queries = state.part_queries
        for stage, (_, boxes, instance_queries) in enumerate(box_states):
            coords, sigma_logits, keypoint_boxes, _, part_queries = \
                self._keypoint_stage(stage, feats, boxes, instance_queries,
                                     part_queries, part_queries[decoded],
                                     decoded, batch_inds)
        return StageOutput(cls_scores, boxes, decoded, coords, sigma_logits,
                           keypoint_boxes)

    def run_stages(self,
                   feats: Sequence[Tensor],
                   img_whwh: Tensor,
                   select: Optional[QuerySelector] = None,
                   parts_by_position: bool = False) -> List[StageOutput]:
        """Run all stages.

        Args:
            feats (Sequence[Tensor]): FPN levels P2.. (B, C, H_l, W_l).
            img_whwh (Tensor): (w, h, w, h) of each unpadded input, (B, 4).
            select (QuerySelector, optional): The queries whose keypoints
                each stage decodes; all if None.
            parts_by_position (bool): Stage s > 0 feeds its i-th decoded
                query the part queries of stage s - 1's i-th decoded query
                (the ``'matched_only'`` training) instead of the query's
                own.

        Returns:
            list[StageOutput]: One per stage.
        """
        feats, state, batch_inds = self._start(feats, img_whwh)
        outputs = []
        for stage in range(self.num_stages):
            output, state = self._forward_stage(stage, feats, state,
                                                batch_inds, select,
                                                parts_by_position)
            outputs.append(output)
        return outputs

    # ------------------------------------------------------------------
    # training, inference
    # ------------------------------------------------------------------
    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples,
             train_cfg: ConfigType = {}) -> dict:
        """Deep-supervised set losses of every stage (see
        :class:`QueryPoseCriterion` for the names).

        Each stage is matched right after its box decoder; in the
        ``'matched_only'`` regime only its matched queries are then decoded
        (see ``train_regime``), and the losses reuse these matches.
        """
        img_whwh = image_whwh(batch_data_samples, feats[0].device)
        gts = pack_gt_instances(
            batch_data_samples, self.num_keypoints, img_whwh.device,
            torch.promote_types(feats[0].dtype, torch.float32))
        matched_only = self.train_regime == 'matched_only'
        matches = []

        def match_stage(stage: int, cls_scores: Tensor,
                        boxes: Tensor) -> Tensor:
            matches.append(
                self.criterion.match_stage(cls_scores, boxes, gts, stage))
            if matched_only:
                return matches[-1].query_inds
            return torch.arange(
                cls_scores.shape[:2].numel(), device=cls_scores.device)

        outputs = self.run_stages(
            feats, img_whwh, match_stage, parts_by_position=matched_only)
        return self.criterion(outputs, matches, gts, img_whwh)

    def predict(self,
                feats: Tuple[Tensor],
                batch_data_samples,
                test_cfg: ConfigType = {}) -> Predictions:
        """Top-k persons per image, NMS-free, in input-frame pixels.

        ``test_cfg.max_per_img`` overrides the head's;
        ``test_cfg.score_thr`` (off by default) keeps only the persons whose
        pose score reaches it and decodes keypoints for only the queries
        that can (:meth:`run_stages_above`; exact, for a box path that does
        not read the keypoint decoders).

        Returns:
            list[InstanceData]: Per image, the persons of :func:`top_poses`
            (``bbox_scores`` is the pose score, which CocoMetric's
            ``score_mode='bbox'`` reads).
        """
        if test_cfg.get('flip_test', False):
            raise ValueError('QueryPoseHead does not implement flip test; '
                             'set test_cfg.flip_test=False')
        img_whwh = image_whwh(batch_data_samples, feats[0].device)
        max_per_img = min(
            test_cfg.get('max_per_img', self.max_per_img), self.num_queries)
        score_thr = test_cfg.get('score_thr', None)
        if score_thr is None:
            last = self.run_stages(feats, img_whwh)[-1]
            return self._poses(last, batch_data_samples, max_per_img)
        last = self.run_stages_above(feats, img_whwh, score_thr)
        return [
            pred[torch.from_numpy(pred.bbox_scores >= score_thr)]
            for pred in self._poses(last, batch_data_samples, max_per_img)
        ]

    def _poses(self, last: StageOutput, batch_data_samples,
               max_per_img: int) -> Predictions:
        """:func:`top_poses`, shifted by ``keypoint_offset``."""
        preds = top_poses(last, self.num_keypoints, max_per_img)
        if self.keypoint_offset:
            for pred, sample in zip(preds, batch_data_samples):
                # original-image pixels -> input pixels
                pred.keypoints += self.keypoint_offset * np.asarray(
                    sample.metainfo['input_size']) / np.asarray(
                        sample.metainfo['input_scale'])
        return preds

    def forward(
        self,
        feats: Tuple[Tensor],
        img_whwh: Optional[Tensor] = None,
        max_per_img: Optional[int] = None
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The best-scored persons of every image as batched tensors: the
        ``tensor`` mode, and what the exported ONNX graph outputs
        (:class:`~querypose_mm.deployment.QueryPoseOnnxModel` calls this).

        Ranked as :meth:`predict` ranks them (:func:`top_pose_tensors`),
        without ``test_cfg.score_thr`` and ``keypoint_offset`` (which is
        added in original-image pixels, where the runtimes add it).

        Args:
            feats (tuple[Tensor]): FPN levels P2.. (B, C, H_l, W_l).
            img_whwh (Tensor, optional): (w, h, w, h) of each unpadded
                input, (B, 4). Defaults to the whole padded input, since the
                ``tensor`` mode gives no meta information.
            max_per_img (int, optional): Persons kept per image, k, at most
                ``num_queries``. Defaults to every query, ranked.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: ``keypoints``
            (B, k, K, 2), ``keypoint_scores`` (B, k, K), ``bboxes``
            (B, k, 4) xyxy (coordinates in input pixels) and the pose
            scores ``bbox_scores`` (B, k), best first.
        """
        if img_whwh is None:
            stride = self.pose_roi_extractor.featmap_strides[0]
            b, _, h, w = feats[0].shape
            img_whwh = (feats[0].new_tensor([w, h, w, h]) * stride).expand(
                b, 4)
        last = self.run_stages(feats, img_whwh)[-1]
        return top_pose_tensors(
            last, self.num_keypoints,
            self.num_queries if max_per_img is None else max_per_img)
