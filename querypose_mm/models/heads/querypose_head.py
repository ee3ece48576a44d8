from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mmpose.registry import MODELS
from mmpose.utils.typing import ConfigType, Predictions
from ..losses.set_criterion import pack_gt_instances
from ..task_modules.query_selection import (persons_per_image,
                                            top_pose_tensors, top_poses)
from ..utils import QueryState, StageOutput, image_whwh
from .querypose_stages import QueryPoseStages


@MODELS.register_module()
class QueryPoseHead(QueryPoseStages):
    """QueryPose: sparse multi-person pose regression (NeurIPS 2022).

    N learnable proposals (boxes, instance queries Q_I, M part queries Q_P
    each) pass through S stages; each stage runs its box decoder on every
    query (:meth:`_box_stage`), then its keypoint decoder
    (:meth:`_keypoint_stage`). Training matches and supervises every stage
    (:meth:`loss`); inference keeps the best persons by
    ``sigmoid(cls) * mean_k(1 - σ_k)`` (:meth:`predict`): no NMS, no
    grouping. The arguments are :class:`QueryPoseStages`'.
    """

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples,
             train_cfg: ConfigType = {}) -> dict:
        """Deep-supervised set losses of every stage (see
        :class:`QueryPoseCriterion` for the names).

        Each stage: the box decoder on every query, the match, then the
        keypoint decoder on every query (``'all_queries'``) or on the
        matched ones (``'matched_only'``); the losses reuse the matches.
        """
        img_whwh = image_whwh(batch_data_samples, feats[0].device)
        gts = pack_gt_instances(
            batch_data_samples, self.num_keypoints, img_whwh.device,
            torch.promote_types(feats[0].dtype, torch.float32))
        feats, state, batch_inds = self._start(feats, img_whwh)
        outputs, matches = [], []
        for stage in range(self.num_stages):
            box_output = self._box_stage(stage, feats, state, batch_inds)
            match = self.criterion.match_stage(*box_output[:2], gts, stage)
            decoded = None
            part_inputs = state.part_queries
            if self.train_regime == 'matched_only':
                decoded = match.query_inds
                part_inputs = self._parts_by_position(stage, state, decoded)
            output, state = self._keypoint_stage(stage, feats, box_output,
                                                 state.part_queries,
                                                 part_inputs, batch_inds,
                                                 decoded)
            outputs.append(output)
            matches.append(match)
        return self.criterion(outputs, matches, gts, img_whwh)

    def run_stages(self, feats: Sequence[Tensor],
                   img_whwh: Tensor) -> List[StageOutput]:
        """Every stage on every query, as at inference.

        Args:
            feats (Sequence[Tensor]): FPN levels P2.. (B, C, H_l, W_l).
            img_whwh (Tensor): (w, h, w, h) of each unpadded input, (B, 4).

        Returns:
            list[StageOutput]: One per stage.
        """
        feats, state, batch_inds = self._start(feats, img_whwh)
        outputs = []
        for stage in range(self.num_stages):
            box_output = self._box_stage(stage, feats, state, batch_inds)
            output, state = self._keypoint_stage(stage, feats, box_output,
                                                 state.part_queries,
                                                 state.part_queries,
                                                 batch_inds)
            outputs.append(output)
        return outputs

    def run_stages_above(self, feats: Sequence[Tensor], img_whwh: Tensor,
                         score_thr: float) -> StageOutput:
        """The last stage, keypoints decoded only for the queries whose
        final class probability reaches ``score_thr``.

        A pose score is ``sigmoid(cls)`` times a number in [0, 1], so no
        other query can score ``score_thr``. Exact where the box path does
        not read the keypoint decoders (:attr:`score_thr_is_exact`, checked
        with the model's ``test_cfg``): the box decoders run first, every
        stage, then the keypoint decoders on their states.
        """
        feats, state, batch_inds = self._start(feats, img_whwh)
        box_outputs = []
        for stage in range(self.num_stages):
            box_outputs.append(
                self._box_stage(stage, feats, state, batch_inds))
            _, boxes, instance_queries = box_outputs[-1]
            state = QueryState(boxes.detach(), instance_queries,
                               state.part_queries, None)
        decoded = torch.nonzero(
            box_outputs[-1][0].reshape(-1).sigmoid() >= score_thr)[:, 0]
        part_queries = state.part_queries
        for stage, box_output in enumerate(box_outputs):
            output, state = self._keypoint_stage(stage, feats, box_output,
                                                 part_queries,
                                                 part_queries[decoded],
                                                 batch_inds, decoded)
            part_queries = state.part_queries
        return output

    def predict(self,
                feats: Tuple[Tensor],
                batch_data_samples,
                test_cfg: ConfigType = {}) -> Predictions:
        """Top-k persons per image, NMS-free, in input-frame pixels.

        ``test_cfg`` (checked by the estimator): ``max_per_img`` persons
        kept (every query if unset); ``score_thr`` (off if unset) keeps only
        the persons whose pose score reaches it and decodes keypoints for
        only the queries that can (:meth:`run_stages_above`).

        Returns:
            list[InstanceData]: Per image, the persons of :func:`top_poses`
            (``bbox_scores`` is the pose score, which CocoMetric's
            ``score_mode='bbox'`` reads).
        """
        img_whwh = image_whwh(batch_data_samples, feats[0].device)
        max_per_img = persons_per_image(test_cfg, self.num_queries)
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
