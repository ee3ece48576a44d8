from .instance_transforms import (FilterCrowdInstances, RandomCropInstances,
                                  RandomShortSideResize, select_instances)

__all__ = [
    'FilterCrowdInstances', 'RandomCropInstances', 'RandomShortSideResize',
    'select_instances'
]
