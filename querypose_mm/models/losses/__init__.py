from .rle_loss import QueryPoseRLELoss
from .set_criterion import QueryPoseCriterion, StageMatch, pack_gt_instances

__all__ = [
    'QueryPoseCriterion', 'QueryPoseRLELoss', 'StageMatch', 'pack_gt_instances'
]
