from .checkpoint import (history_buffer_statistic,
                         register_checkpoint_safe_globals)
from .checkpoint_file import (CheckpointFileError, check_published_hash,
                              check_torch_save_file, pop_checkpoint_file_read,
                              read_checkpoint)
from .dependencies import (SUPPORTED_VERSIONS, check_dependency_versions,
                           check_installed_stack)
from .files import (IMAGE_SUFFIXES, atomic_output, atomic_write_bytes,
                    check_not_input, check_output_dir, check_output_file,
                    dump_json_atomically, is_inside, list_images,
                    prediction_names, remove_partial_files, same_file)

__all__ = [
    'IMAGE_SUFFIXES', 'atomic_output', 'atomic_write_bytes', 'list_images',
    'prediction_names', 'remove_partial_files', 'check_output_dir',
    'check_output_file', 'check_not_input', 'is_inside', 'same_file',
    'CheckpointFileError', 'check_published_hash', 'check_torch_save_file',
    'pop_checkpoint_file_read', 'read_checkpoint', 'SUPPORTED_VERSIONS',
    'check_dependency_versions', 'check_installed_stack',
    'dump_json_atomically', 'history_buffer_statistic',
    'register_checkpoint_safe_globals'
]
