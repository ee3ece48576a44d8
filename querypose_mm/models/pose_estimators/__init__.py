from .querypose_estimator import QueryPoseEstimator, check_test_cfg

__all__ = ['QueryPoseEstimator', 'check_test_cfg']
