from typing import Sequence

from torch import Tensor


def check_fpn_feats(feats: Sequence[Tensor], num_levels: int,
                    channels: int) -> None:
    """Fail clearly on a neck that does not fit the head."""
    if len(feats) < num_levels:
        raise ValueError(
            f'QueryPoseHead needs {num_levels} feature levels '
            f'(P2..) for its box RoI extractor, got {len(feats)}; set '
            'the neck\'s num_outs accordingly')
    for level, feat in enumerate(feats[:num_levels]):
        if feat.size(1) != channels:
            raise ValueError(
                f'feature level {level} has {feat.size(1)} channels but '
                f'QueryPoseHead.in_channels is {channels}; make '
                'the neck\'s out_channels and the head\'s in_channels '
                '(and its RoI extractors\' out_channels) equal')
