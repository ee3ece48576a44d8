from .annotation_checks import (AnnotationError, CheckedAnnotationsMixin,
                                find_annotation_problems)
from .checked_datasets import (CheckedAicDataset, CheckedCocoDataset,
                               CheckedCrowdPoseDataset, CheckedOCHumanDataset)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'AnnotationError', 'CheckedAicDataset', 'CheckedAnnotationsMixin',
    'CheckedCocoDataset', 'CheckedCrowdPoseDataset', 'CheckedOCHumanDataset',
    'find_annotation_problems'
]
