from .atomic_local_backend import AtomicLocalBackend, atomic_write_bytes
from .cpu_distributed import (CPUCompatibleDistributedDataParallel,
                              prepare_cpu_distributed)

__all__ = [
    'AtomicLocalBackend', 'CPUCompatibleDistributedDataParallel',
    'atomic_write_bytes', 'prepare_cpu_distributed'
]
