from .dump_results import AtomicDumpResults

__all__ = ['AtomicDumpResults']
