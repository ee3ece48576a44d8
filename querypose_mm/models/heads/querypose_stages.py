"""The modules of QueryPose's head and the steps of one stage."""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import ModuleList
from torch import Tensor

from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import MODELS
from mmpose.utils.typing import ConfigType, OptConfigType
from ..utils import (QueryState, StageOutput, boxes_to_rois,
                     check_finite_stage, check_fpn_feats, check_part_groups,
                     check_positive_ints, checked_train_regime, decode_boxes,
                     instance_query_flows, mmdet_cfg, pose_roi_size,
                     rename_keys)

# state-dict keys of checkpoints written before the head was split
_RENAMED_IN_VERSION_2 = {
    'init_proposal_bboxes.': 'proposals.init_proposal_bboxes.',
    'init_proposal_features.': 'proposals.init_proposal_features.',
    'init_part_queries.': 'proposals.init_part_queries.',
    'loss_keypoint.': 'criterion.loss_keypoint.',
}


class QueryPoseStages(BaseHead):
    """The modules of QueryPose's head and the steps of one stage, which
    :class:`QueryPoseHead` runs in its training and inference loops.

    The proposals (:class:`LearnableProposals`: boxes, instance queries Q_I,
    M part queries Q_P each) start the first stage. In stage s the box
    decoder (mmdet ``DIIHead`` on 7x7 RoIs of P2-P5) refines Q_I, classifies
    and moves the boxes (:meth:`_box_stage`); the keypoint decoder
    (:class:`KeypointDecoderStage` on RoIs of P2 at the new boxes) refines
    Q_P (and Q_I) and regresses box-frame keypoints with RLE
    (:meth:`_keypoint_stage`).

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
            stage (the sizes and ``roi_size`` are filled in).
        criterion (dict): :class:`QueryPoseCriterion`.
        proposals (dict): :class:`LearnableProposals`.
        instance_query_flow (str | dict): Where the next box decoder's Q_I
            comes from: ``'serial'`` (Fig. 3(b)) the keypoint decoder's,
            ``'box_only'`` (Fig. 3(a)) this box decoder's (the same without
            a Q_I update: the light version); ``dict(train=.., test=..)``
            per phase (official v1: serial training, box-only testing).
        train_regime (str): ``'all_queries'`` (the paper's code, e249749):
            every query is decoded, as at inference; ``'matched_only'``
            (official v1, bf0814f): only each stage's matched queries, whose
            part queries pass on by position (:meth:`_parts_by_position`);
            about 4x cheaper a step, but with the full version's serial
            training flow the next stage can read the match (warned at
            build). ``'official'`` is its former name.
        wh_ratio_clip (float): A box side changes at most by
            ``1 / wh_ratio_clip`` per stage.
        growth_only_clip (bool): Bound only growth (the official clamp).
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
            part_dim=part_dim)
        check_part_groups(part_groups, num_keypoints)
        self.instance_query_flows = instance_query_flows(instance_query_flow)
        self.num_keypoints = num_keypoints
        self.num_queries = num_queries
        self.num_stages = num_stages
        self.in_channels = in_channels
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
    def score_thr_is_exact(self) -> bool:
        """Whether the test-time box path leaves the keypoint decoders out
        (the light version, or the ``'box_only'`` test flow), which exact
        score-threshold decoding (``test_cfg.score_thr``) needs."""
        return (self.instance_query_flows['test'] == 'box_only'
                or not self.keypoint_decoders[0].update_instance_query)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args,
                              **kwargs) -> None:
        if local_metadata.get('version', 1) < 2:
            rename_keys(state_dict, prefix, _RENAMED_IN_VERSION_2)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)

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
        cls_scores, deltas, instance_queries, _ = box_decoder(
            roi_feats, state.instance_queries)
        boxes = decode_boxes(box_decoder.bbox_coder, flat_boxes,
                             deltas.reshape(-1, 4), self.wh_ratio_clip,
                             self.growth_only_clip)
        boxes = boxes.view(batch_size, num_queries, 4)
        if not self.training:  # training: the matching checks (no sync)
            check_finite_stage(stage, cls_scores, boxes)
        return cls_scores, boxes, instance_queries

    def _keypoint_stage(
            self,
            stage: int,
            feats: Sequence[Tensor],
            box_output: Tuple[Tensor, Tensor, Tensor],
            part_queries: Tensor,
            part_inputs: Tensor,
            batch_inds: Tensor,
            decoded: Optional[Tensor] = None
    ) -> Tuple[StageOutput, QueryState]:
        """Stage ``stage``'s keypoint decoder on the ``decoded`` queries.

        Args:
            box_output (tuple): :meth:`_box_stage`'s class logits, boxes and
                Q_I.
            part_queries (Tensor): What each query holds, (B * N, M, d_p).
            part_inputs (Tensor): What the decoded queries read, in their
                order, (n, M, d_p).
            decoded (Tensor, optional): Sorted flat indices (n,) of the
                queries to decode; every query if None.

        Returns:
            tuple[StageOutput, QueryState]: The stage's predictions, and what
            it hands on: queries left out keep the Q_I of the box decoder and
            their part queries.
        """
        cls_scores, boxes, instance_queries = box_output
        keypoint_boxes = boxes.detach().reshape(-1, 4)
        flat_instance = instance_queries.reshape(-1, self.in_channels)
        if decoded is not None:
            keypoint_boxes = keypoint_boxes[decoded]
            flat_instance = flat_instance[decoded]
            batch_inds = batch_inds[decoded]
        if keypoint_boxes.size(0) == 0:
            coords = keypoint_boxes.new_zeros(0, self.num_keypoints, 2)
            kpt = dict(
                coords=coords,
                sigma_logits=coords,
                instance_queries=flat_instance,
                part_queries=part_inputs)
        else:
            pose_rois = self.pose_roi_extractor(
                feats[:1], boxes_to_rois(keypoint_boxes, batch_inds))
            kpt = self.keypoint_decoders[stage](pose_rois, flat_instance,
                                                part_inputs)
        if decoded is None:
            decoded = torch.arange(
                keypoint_boxes.size(0), device=keypoint_boxes.device)
            part_queries = kpt['part_queries']
            refined = kpt['instance_queries']
        else:
            part_queries = part_queries.index_copy(0, decoded,
                                                   kpt['part_queries'])
            refined = instance_queries.reshape(-1, self.in_channels)
            refined = refined.index_copy(0, decoded, kpt['instance_queries'])
        if self.instance_query_flow == 'serial':
            instance_queries = refined.view_as(instance_queries)
        output = StageOutput(cls_scores, boxes, decoded, kpt['coords'],
                             kpt['sigma_logits'], keypoint_boxes)
        # Sparse R-CNN: no gradient flows through the proposal boxes.
        return output, QueryState(boxes.detach(), instance_queries,
                                  part_queries, decoded)

    @staticmethod
    def _parts_by_position(stage: int, state: QueryState,
                           decoded: Tensor) -> Tensor:
        """The ``'matched_only'`` hand-over: the i-th matched query of this
        stage reads the part queries of the previous stage's i-th matched
        query (the official v1 code), (n, M, d_p)."""
        if state.decoded is None:  # stage 0: the proposals' own
            return state.part_queries[decoded]
        if state.decoded.numel() != decoded.numel():
            raise ValueError(
                f'stage {stage} matched {decoded.numel()} queries but stage '
                f'{stage - 1} matched {state.decoded.numel()}; part queries '
                'handed on by position need a one-to-one assigner')
        return state.part_queries[state.decoded]
