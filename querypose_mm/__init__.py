"""QueryPose for MMPose: sparse multi-person pose regression with part queries.

Importing this package checks the OpenMMLab stack, makes mmengine checkpoints
loadable under torch's ``weights_only`` default, and registers every module
of the project in mmpose's registries.
"""
from .utils.dependencies import check_installed_stack
from .version import __version__

check_installed_stack()

from .utils.checkpoint import register_checkpoint_safe_globals  # noqa: E402

register_checkpoint_safe_globals()

# registers every module of the project in mmpose's registries
from . import datasets, engine, evaluation  # noqa: E402,F401 # isort:skip
from . import models, visualization  # noqa: E402,F401 # isort:skip

__all__ = ['__version__']
