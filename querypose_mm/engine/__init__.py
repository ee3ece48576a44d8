from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_hook import AtomicCheckpointHook
from .cpu_distributed import (CPUCompatibleDistributedDataParallel,
                              prepare_cpu_distributed)
from .resume import (find_resumable_checkpoint, is_complete_checkpoint,
                     remove_interrupted_saves)

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend',
    'CPUCompatibleDistributedDataParallel', 'find_resumable_checkpoint',
    'is_complete_checkpoint', 'prepare_cpu_distributed',
    'remove_interrupted_saves'
]
