from .box_frame import (boxes_to_rois, decode_boxes, image_whwh,
                        keypoint_scores_from_sigma, keypoints_from_box_frame,
                        keypoints_to_box_frame)
from .checks import (TRAIN_REGIMES, check_finite_stage, check_fpn_feats,
                     check_positive_ints, checked_choice, checked_train_regime,
                     instance_query_flows, pose_roi_size)
from .mmdet_scope import mmdet_cfg
from .part_groups import (COCO_PARTS_5, COCO_PARTS_7, COCO_PARTS_13,
                          COCO_PARTS_17, CROWDPOSE_PARTS_7, check_part_groups)
from .precision import (PRECISIONS, QUERYPOSE_BF16_POLICY, Bf16Policy,
                        checked_precision, run_in_float32)
from .stage_output import QueryState, StageOutput
from .state_dict import rename_keys

__all__ = [
    'COCO_PARTS_5', 'COCO_PARTS_7', 'COCO_PARTS_13', 'COCO_PARTS_17',
    'QUERYPOSE_BF16_POLICY', 'Bf16Policy', 'CROWDPOSE_PARTS_7', 'PRECISIONS',
    'QueryState', 'StageOutput', 'TRAIN_REGIMES', 'boxes_to_rois',
    'check_finite_stage', 'check_fpn_feats', 'check_positive_ints',
    'check_part_groups', 'decode_boxes', 'checked_choice', 'checked_precision',
    'checked_train_regime', 'image_whwh', 'instance_query_flows',
    'keypoint_scores_from_sigma', 'keypoints_from_box_frame',
    'keypoints_to_box_frame', 'mmdet_cfg', 'pose_roi_size', 'rename_keys',
    'run_in_float32'
]
