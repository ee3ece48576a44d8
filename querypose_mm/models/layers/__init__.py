from .keypoint_decoder import KeypointDecoderStage
from .partwise_linear import PartwiseLinear
from .sim import SelectiveIteration
from .spegm import SpatialPartEmbedding

__all__ = [
    'KeypointDecoderStage', 'PartwiseLinear', 'SelectiveIteration',
    'SpatialPartEmbedding'
]
