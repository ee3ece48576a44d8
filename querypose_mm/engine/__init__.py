from .atomic_local_backend import AtomicLocalBackend, atomic_write_bytes
from .cpu_distributed import (CPUCompatibleDistributedDataParallel,
                              prepare_cpu_distributed)
from .resume import find_resumable_checkpoint, is_complete_checkpoint

__all__ = [
    'AtomicLocalBackend', 'CPUCompatibleDistributedDataParallel',
    'atomic_write_bytes', 'find_resumable_checkpoint',
    'is_complete_checkpoint', 'prepare_cpu_distributed'
]
