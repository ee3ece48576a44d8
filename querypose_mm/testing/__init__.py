from ._utils import (QUICKSTART_CONFIG, build_quickstart_model,
                     finite_training_step, get_config_path,
                     get_quickstart_head_cfg, get_quickstart_model_cfg)
from .emulated_cuda import EmulatedCuda, is_on_emulated_cuda

__all__ = [
    'EmulatedCuda', 'is_on_emulated_cuda', 'QUICKSTART_CONFIG',
    'build_quickstart_model', 'finite_training_step', 'get_config_path',
    'get_quickstart_head_cfg', 'get_quickstart_model_cfg'
]
