from .query_selection import top_poses

__all__ = ['top_poses']
