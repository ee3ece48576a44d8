from .querypose_estimator import QueryPoseEstimator

__all__ = ['QueryPoseEstimator']
