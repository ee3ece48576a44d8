from .instance_transforms import (FilterInstances, RandomCropInstances,
                                  RandomShortSideResize, select_instances)
from .loading import LoadImageOrSkip

__all__ = [
    'FilterInstances', 'LoadImageOrSkip', 'RandomCropInstances',
    'RandomShortSideResize', 'select_instances'
]
