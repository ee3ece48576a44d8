from .query_selection import persons_per_image, top_poses

__all__ = ['persons_per_image', 'top_poses']
