"""Mixed-precision inference: what runs in bfloat16 and what stays float32."""
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Callable, Iterator, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from .checks import checked_choice

# one vocabulary for every door: test_cfg.precision, the runtimes, the demo,
# the benchmark
PRECISIONS = ('fp32', 'bf16')
# earlier spellings, still read
_PRECISION_ALIASES = {'f32': 'fp32'}


def checked_precision(precision: str, owner: str) -> str:
    """``precision`` as one of :data:`PRECISIONS` (``'f32'``, the runtimes'
    former spelling, is read as ``'fp32'`` with a DeprecationWarning);
    otherwise a ValueError naming ``owner``."""
    return checked_choice(owner, precision, PRECISIONS, _PRECISION_ALIASES)


@dataclass(frozen=True)
class Bf16Policy:
    """Where QueryPose's lower-precision runs depart from plain
    ``torch.autocast``, as module names of the model in which ``*`` stands
    for one part (``head.box_decoders.*``).

    Attributes:
        float32 (tuple[str]): Modules that run in float32 whenever autocast
            is on (bf16 inference, AMP training, mmengine's fp16 test): their
            floating inputs cast up, autocast off inside
            (:meth:`keep_float32`, once at build).
        channels_last (tuple[str]): Modules whose weights the bf16 inference
            makes channels-last (:meth:`inference`; undone by ``train()``).
    """
    float32: Tuple[str, ...]
    channels_last: Tuple[str, ...]

    def modules(self, model: nn.Module,
                patterns: Sequence[str]) -> List[nn.Module]:
        """The modules of ``model`` that one of ``patterns`` names."""
        return [
            module for name, module in model.named_modules() if any(
                _names(name, pattern) for pattern in patterns)
        ]

    def keep_float32(self, model: nn.Module) -> None:
        """Make the :attr:`float32` modules of ``model`` run in float32
        under autocast (a no-op without it)."""
        for module in self.modules(model, self.float32):
            module.forward = _InFloat32(module)

    @contextmanager
    def inference(self, model: nn.Module, device_type: str) -> Iterator[None]:
        """bf16 autocast on ``device_type`` with the :attr:`channels_last`
        layout (which stays after the ``with`` block)."""
        for module in self.modules(model, self.channels_last):
            module.to(memory_format=torch.channels_last)
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield


class _InFloat32:
    """A module's own ``forward`` through :func:`run_in_float32`; an object
    rather than a closure, so that a deep copy binds the copied module."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, *inputs: Tensor):
        return run_in_float32(
            type(self.module).forward.__get__(self.module), *inputs)


# Measured on the quick-start checkpoints: the box decoders and the keypoint
# coordinate/sigma heads in float32 give the float32 AP, while bf16 in either
# moved it by up to 0.03. On their 14x14 RoIs oneDNN's bf16 kernels prefer
# channels-last conv stacks and SPEGM; the backbone and neck stay NCHW
# (channels-last made them 2.3x slower in bf16 on an AVX512-BF16 CPU).
QUERYPOSE_BF16_POLICY = Bf16Policy(
    float32=('head.box_decoders.*', 'head.keypoint_decoders.*.coord_head',
             'head.keypoint_decoders.*.sigma_head'),
    channels_last=('head.keypoint_decoders.*.conv_stack',
                   'head.keypoint_decoders.*.spegm'))


def _names(name: str, pattern: str) -> bool:
    parts, pattern_parts = name.split('.'), pattern.split('.')
    return len(parts) == len(pattern_parts) and all(
        fnmatchcase(part, wanted)
        for part, wanted in zip(parts, pattern_parts))


def run_in_float32(module: Callable, *inputs: Tensor):
    """``module(*inputs)`` in float32 when autocast is on (its floating
    inputs cast up, autocast off inside), else as is (see
    :class:`Bf16Policy`)."""
    device_type = inputs[0].device.type
    if not torch.is_autocast_enabled(device_type):
        return module(*inputs)
    with torch.autocast(device_type, enabled=False):
        return module(*(x.float() if x.is_floating_point() else x
                        for x in inputs))
