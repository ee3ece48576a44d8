"""CUDA emulated on the CPU, to test device placement and host syncs
without a GPU.

Inside :class:`EmulatedCuda`, a tensor marked as on the GPU (by
:meth:`EmulatedCuda.move`, by ``device='cuda'`` or ``.cuda()``, or as the
result of an op on such a tensor) reports ``device`` ``cuda:0`` and
``is_cuda`` True while its data stays on the CPU. Every torch call is seen
(a ``TorchFunctionMode``), which records:

- *host syncs*: what waits for the GPU on a real one: ``.item()``,
  ``bool()``/``int()``/``float()`` of a tensor, ``.tolist()``, a copy to
  the CPU, ``nonzero``, ``torch.equal``, boolean-mask indexing, ... of a
  GPU tensor;
- *device mixes*: an op that takes a GPU tensor and a CPU tensor of one or
  more dimensions (which CUDA refuses: a CPU-made tensor in the model), and
  ``.numpy()`` of a GPU tensor.

Each record names the first caller outside torch, as ``file:function``.
Kernels run as on the CPU: mmcv's C++ ops take their CPU path, and mmdet's
``FocalLoss`` its Python one (``torch.cuda.is_available()`` stays False).
Gradients computed by autograd are not marked.
"""
import os.path as osp
import sys
from collections import Counter
from typing import Iterable, List, Union

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

_MARK = '_emulated_cuda'
_CUDA = torch.device('cuda', 0)
_DEVICE_GETTERS = {Tensor.device.__get__, Tensor.is_cuda.__get__}
_SCALAR_SYNCS = {
    Tensor.item, Tensor.tolist, Tensor.__bool__, Tensor.__int__,
    Tensor.__float__, Tensor.__index__
}
_DATA_DEPENDENT_SYNCS = {
    torch.nonzero, Tensor.nonzero, torch.argwhere, Tensor.argwhere,
    torch.equal, Tensor.equal, torch.masked_select, Tensor.masked_select,
    torch.unique, Tensor.unique, torch.unique_consecutive,
    Tensor.unique_consecutive
}
_TO_HOST = {Tensor.numpy, Tensor.__array__}
# indexing a GPU tensor with CPU indices is allowed (they are copied over)
_INDEXING = {Tensor.__getitem__, Tensor.__setitem__}
# calls that take tensors of both devices on a GPU too
_DEVICE_NEUTRAL = {Tensor.to, torch._has_compatible_shallow_copy_type}
_TORCH_DIR = osp.dirname(torch.__file__)


def is_on_emulated_cuda(tensor: Tensor) -> bool:
    """Whether ``tensor`` is marked as on the emulated GPU."""
    return getattr(tensor, _MARK, False)


def _is_cuda(device) -> bool:
    if isinstance(device, (str, torch.device)):
        return torch.device(device).type == 'cuda'
    return False


def _mark(outputs) -> None:
    for leaf in tree_flatten(outputs)[0]:
        if isinstance(leaf, Tensor):
            setattr(leaf, _MARK, True)


def _caller() -> str:
    """``file:function`` of the innermost frame outside torch and this
    module."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if not (path.startswith(_TORCH_DIR) or path == __file__):
            return f'{osp.basename(path)}:{frame.f_code.co_name}'
        frame = frame.f_back
    return '?'


class EmulatedCuda(TorchFunctionMode):
    """A torch function mode in which marked CPU tensors act as CUDA ones.

    Use as a context manager; :attr:`syncs` and :attr:`mixes` list what was
    recorded (``file:function`` strings), :meth:`sync_counts` counts them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.syncs: List[str] = []
        self.mixes: List[str] = []

    def move(self, target: Union[nn.Module, Tensor, Iterable[Tensor]]):
        """Mark a module's parameters and buffers, a tensor or tensors as on
        the GPU, in place; returns ``target``."""
        if isinstance(target, nn.Module):
            _mark(list(target.parameters()) + list(target.buffers()))
        else:
            _mark(target)
        return target

    def sync_counts(self) -> Counter:
        """How many host syncs each caller made."""
        return Counter(self.syncs)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _DEVICE_GETTERS:
            on_gpu = is_on_emulated_cuda(args[0])
            if func == Tensor.is_cuda.__get__:
                return on_gpu
            return _CUDA if on_gpu else func(*args, **kwargs)
        if func == Tensor.data.__set__:
            func(*args, **kwargs)  # keeps the Parameter, takes the data's
            setattr(args[0], _MARK, is_on_emulated_cuda(args[1]))
            return None
        tensors = [
            leaf for leaf in tree_flatten((args, kwargs))[0]
            if isinstance(leaf, Tensor)
        ]
        on_gpu = any(is_on_emulated_cuda(t) for t in tensors)
        to_gpu, to_host = self._device_change(func, args, kwargs)
        if func == Tensor.cuda:
            func, args, kwargs, to_gpu = Tensor.clone, args[:1], {}, True
        elif to_gpu:
            if _is_cuda(kwargs.get('device')):
                kwargs['device'] = 'cpu'
            args = tuple('cpu' if _is_cuda(a) else a for a in args)
        if func == Tensor.copy_:  # the destination keeps its device
            if is_on_emulated_cuda(
                    args[1]) and not is_on_emulated_cuda(args[0]):
                self.syncs.append(_caller())
            return func(*args, **kwargs)
        if on_gpu:
            self._record(func, args, tensors, to_host)
        outputs = func(*args, **kwargs)
        if to_host and on_gpu:  # a copy, as from a GPU (not the input)
            return outputs.clone()
        if to_gpu or on_gpu:
            _mark(outputs)
        return outputs

    @staticmethod
    def _device_change(func, args, kwargs) -> tuple:
        """Whether the call makes a GPU tensor, and whether it copies one to
        the host."""
        devices = [kwargs.get('device')]
        if func in (Tensor.to, Tensor.new_tensor, Tensor.new_empty,
                    Tensor.new_zeros, Tensor.new_ones, Tensor.new_full):
            devices += list(args[1:])
        targets_gpu = any(_is_cuda(d) for d in devices) or any(
            isinstance(a, Tensor) and is_on_emulated_cuda(a)
            for a in args[1:] if func == Tensor.to)
        explicit_host = any(
            isinstance(d, (str,
                           torch.device)) and torch.device(d).type == 'cpu'
            for d in devices)
        to_host = func == Tensor.cpu or (func == Tensor.to and explicit_host)
        return targets_gpu or func == Tensor.cuda, to_host

    def _record(self, func, args, tensors, to_host: bool) -> None:
        caller = _caller()
        if func in _TO_HOST:
            self.mixes.append(f'{caller} (numpy() of a CUDA tensor)')
            return
        if (func in _SCALAR_SYNCS or func in _DATA_DEPENDENT_SYNCS or to_host):
            self.syncs.append(caller)
            return
        if func in _INDEXING:
            index = args[1] if len(args) > 1 else None
            masks = [
                t for t in tree_flatten(index)[0]
                if isinstance(t, Tensor) and t.dtype == torch.bool
            ]
            if any(is_on_emulated_cuda(m) for m in masks):
                self.syncs.append(caller)  # a boolean mask: nonzero inside
            return
        if func in _DEVICE_NEUTRAL:
            return
        if any(t.dim() > 0 and not is_on_emulated_cuda(t) for t in tensors):
            self.mixes.append(f'{caller} ({getattr(func, "__name__", func)} '
                              'of a CUDA and a CPU tensor)')
