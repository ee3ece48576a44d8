"""Mixed-precision inference: what runs in bfloat16 and what stays float32."""
from typing import Callable

import torch
from torch import Tensor

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


def run_in_float32(module: Callable, *inputs: Tensor):
    """``module(*inputs)`` in float32 when autocast is on (its floating
    inputs cast up, autocast off inside), else as is.

    The parts of the bf16 inference that accuracy needs in float32 run
    through this: on the quick-start checkpoints, the box decoders and the
    keypoint coordinate/sigma heads in float32 give the float32 AP, while
    bf16 in either moved it by up to 0.03.
    """
    device_type = inputs[0].device.type
    if not torch.is_autocast_enabled(device_type):
        return module(*inputs)
    with torch.autocast(device_type, enabled=False):
        return module(*(x.float() if x.is_floating_point() else x
                        for x in inputs))
