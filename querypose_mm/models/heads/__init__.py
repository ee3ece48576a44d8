from .learnable_proposals import LearnableProposals
from .querypose_head import QueryPoseHead
from .querypose_stages import QueryPoseStages

__all__ = ['LearnableProposals', 'QueryPoseHead', 'QueryPoseStages']
