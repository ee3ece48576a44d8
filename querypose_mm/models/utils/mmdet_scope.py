import copy

from mmpose.utils.typing import ConfigType


def mmdet_cfg(cfg: ConfigType) -> dict:
    """A copy of an mmdet module config that builds in mmdet's scope.

    Under mmpose's default scope, ``type='mmdet.X'`` finds X but not the
    defaults X builds inside (DIIHead's bbox coder, the assigner's match
    costs), which are then looked up in mmpose's registries and fail;
    ``_scope_='mmdet'`` switches the whole build to mmdet.
    """
    cfg = copy.deepcopy(dict(cfg))
    cfg.setdefault('_scope_', 'mmdet')
    return cfg
