from .atomic_json import dump_json_atomically
from .checkpoint import (history_buffer_statistic,
                         register_checkpoint_safe_globals)
from .checkpoint_file import (CheckpointFileError, check_published_hash,
                              loading_checkpoint_file, read_checkpoint)
from .dependencies import (SUPPORTED_VERSIONS, check_dependency_versions,
                           check_installed_stack)

__all__ = [
    'CheckpointFileError', 'check_published_hash', 'loading_checkpoint_file',
    'read_checkpoint', 'SUPPORTED_VERSIONS', 'check_dependency_versions',
    'check_installed_stack', 'dump_json_atomically',
    'history_buffer_statistic', 'register_checkpoint_safe_globals'
]
