"""Distributed training on machines without CUDA (gloo backend).

mmengine 0.10.7 assumes CUDA for ``launcher='pytorch'``: ``init_dist`` calls
``torch.cuda.set_device`` before creating the process group, and
``Runner.wrap_model`` gives ``DistributedDataParallel`` ``device_ids=[rank]``,
which torch refuses for a module on the CPU. Both are fixed here without
replacing mmengine's launcher flow: the process group is created from the
same ``torch.distributed.run`` / Slurm environment variables with the gloo
backend before the Runner's own ``init_dist`` (which then sees an initialised
group and skips), and the model wrapper drops ``device_ids`` for CPU modules.
"""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


# in mmengine's root registry, where Runner.wrap_model looks wrappers up
@MODEL_WRAPPERS.register_module()
class CPUCompatibleDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps a module on the CPU.

    Args:
        module (nn.Module): The model.
        device_ids (list[int], optional): Kept for a CUDA module; dropped for
            a CPU module, for which torch requires ``None``.
        **kwargs: Passed to ``MMDistributedDataParallel``.
    """

    def __init__(self, module: nn.Module, device_ids=None, **kwargs) -> None:
        on_cuda = any(p.is_cuda for p in module.parameters())
        super().__init__(
            module=module,
            device_ids=device_ids if on_cuda else None,
            **kwargs)


def prepare_cpu_distributed(cfg: Config) -> Config:
    """Make a distributed config run on CPUs; a no-op where CUDA exists.

    For ``cfg.launcher`` ``'pytorch'`` (``torch.distributed.run``) or
    ``'slurm'`` on a machine without CUDA, initialise the default process
    group with gloo and use :class:`CPUCompatibleDistributedDataParallel`.

    Args:
        cfg (Config): The config after command-line overrides.

    Returns:
        Config: The same config, changed in place.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(
            f"launcher '{launcher}' needs CUDA; on CPUs use 'pytorch' "
            "(torch.distributed.run / tools/dist_train.sh) or 'slurm'")
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if not torch_dist.is_initialized():
        if launcher == 'slurm':
            _slurm_env_to_torch_env()
        missing = [
            k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
            if k not in os.environ
        ]
        if missing:
            raise RuntimeError(
                f'launcher={launcher!r} but {", ".join(missing)} is not set; '
                'start the job with tools/dist_train.sh (torch.distributed.'
                'run) or tools/slurm_train.sh')
        torch_dist.init_process_group(backend='gloo')
    wrapper = dict(
        type='CPUCompatibleDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.update(cfg.get('model_wrapper_cfg') or {})
    cfg.model_wrapper_cfg = wrapper
    return cfg


def _slurm_env_to_torch_env() -> None:
    """Set torch.distributed's variables from Slurm's, as mmengine does."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        import subprocess
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
