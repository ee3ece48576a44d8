from .querypose_head import QueryPoseHead

__all__ = ['QueryPoseHead']
