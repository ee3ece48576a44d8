"""mmpose's COCO-style keypoint datasets with their annotation files checked
(:class:`CheckedAnnotationsMixin`); the configs of this project use them."""
from mmpose.datasets import (AicDataset, CocoDataset, CrowdPoseDataset,
                             OCHumanDataset)
from mmpose.registry import DATASETS
from .annotation_checks import CheckedAnnotationsMixin


@DATASETS.register_module()
class CheckedCocoDataset(CheckedAnnotationsMixin, CocoDataset):
    """mmpose's ``CocoDataset``, its annotation file checked."""


@DATASETS.register_module()
class CheckedCrowdPoseDataset(CheckedAnnotationsMixin, CrowdPoseDataset):
    """mmpose's ``CrowdPoseDataset``, its annotation file checked."""


@DATASETS.register_module()
class CheckedAicDataset(CheckedAnnotationsMixin, AicDataset):
    """mmpose's ``AicDataset``, its annotation file checked."""


@DATASETS.register_module()
class CheckedOCHumanDataset(CheckedAnnotationsMixin, OCHumanDataset):
    """mmpose's ``OCHumanDataset``, its annotation file checked."""
