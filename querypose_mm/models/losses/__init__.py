from .rle_loss import QueryPoseRLELoss

__all__ = ['QueryPoseRLELoss']
