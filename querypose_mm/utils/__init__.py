from .checkpoint import (history_buffer_statistic,
                         register_checkpoint_safe_globals)
from .checkpoint_file import (CheckpointFileError, check_published_hash,
                              pop_checkpoint_file_read, read_checkpoint)
from .dependencies import (SUPPORTED_VERSIONS, check_dependency_versions,
                           check_installed_stack)
from .files import (IMAGE_SUFFIXES, atomic_output, atomic_write_bytes,
                    dump_json_atomically, list_images, prediction_names,
                    remove_partial_files)

__all__ = [
    'IMAGE_SUFFIXES', 'atomic_output', 'atomic_write_bytes', 'list_images',
    'prediction_names', 'remove_partial_files', 'CheckpointFileError',
    'check_published_hash', 'pop_checkpoint_file_read', 'read_checkpoint',
    'SUPPORTED_VERSIONS', 'check_dependency_versions', 'check_installed_stack',
    'dump_json_atomically', 'history_buffer_statistic',
    'register_checkpoint_safe_globals'
]
