from .keypoint_decoder import (COCO_PARTS_7, KeypointDecoderStage,
                               PartwiseLinear, check_part_groups)
from .sim import SelectiveIteration
from .spegm import SpatialPartEmbedding

__all__ = [
    'COCO_PARTS_7', 'KeypointDecoderStage', 'PartwiseLinear',
    'SelectiveIteration', 'SpatialPartEmbedding', 'check_part_groups'
]
