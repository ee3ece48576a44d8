from .learnable_proposals import LearnableProposals
from .querypose_head import QueryPoseHead

__all__ = ['LearnableProposals', 'QueryPoseHead']
