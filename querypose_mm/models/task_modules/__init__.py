from .query_selection import (decode_topk_exact, decode_topk_stages, top_poses,
                              topk_per_stage)

__all__ = [
    'decode_topk_exact', 'decode_topk_stages', 'top_poses', 'topk_per_stage'
]
