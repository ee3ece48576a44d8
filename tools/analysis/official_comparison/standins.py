"""Small stand-ins for the detectron2 / fvcore pieces that the official
QueryPose modules import, written from those libraries' documented
behaviour.

The official ``head.py`` and ``loss.py`` import detectron2's ``ROIPooler``,
``cat``, ``Boxes`` and ``CfgNode`` and fvcore's ``c2_msra_fill``,
``c2_xavier_fill`` and ``sigmoid_focal_loss_jit``. :func:`standin_modules`
puts these stand-ins into ``sys.modules`` for the duration of a comparison,
for each library that is not installed; an installed detectron2 or fvcore
is used as is.
"""
import contextlib
import importlib.util
import math
import sys
import types
from typing import Dict, Iterator, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align

# detectron2's ROIPooler: a box of side 224 maps to P4 (its defaults)
CANONICAL_BOX_SIZE = 224
CANONICAL_LEVEL = 4
# what the official modules import from outside torch, numpy and scipy
LIBRARIES = ('detectron2', 'fvcore')


class Boxes:
    """detectron2's ``Boxes``: an (n, 4) xyxy tensor.

    Unlike detectron2's, which rounds the boxes to float32, it keeps their
    dtype, so that a float64 comparison stays float64 (with detectron2 the
    RoIs are sampled at float32-rounded boxes).
    """

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor

    def area(self) -> Tensor:
        """(n,) box areas."""
        box = self.tensor
        return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])

    def __len__(self) -> int:
        return self.tensor.shape[0]


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """detectron2's ``cat``: ``torch.cat`` that skips the copy of one."""
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(list(tensors), dim)


def box_levels(boxes: Tensor, min_level: int, max_level: int) -> Tensor:
    """The FPN level index (0 = ``min_level``) of each (n, 4) xyxy box:
    ``floor(4 + log2(sqrt(area) / 224))`` clamped to the pooler's levels,
    detectron2's ``assign_boxes_to_levels``; (n,) int64."""
    sizes = Boxes(boxes).area().sqrt()
    levels = torch.floor(CANONICAL_LEVEL +
                         torch.log2(sizes / CANONICAL_BOX_SIZE + 1e-8))
    return levels.clamp(min_level, max_level).long() - min_level


class ROIPooler(nn.Module):
    """detectron2's ``ROIPooler`` for its RoIAlign types, on torchvision's
    ``roi_align`` (which detectron2's ``ROIAlign`` calls).

    Args:
        output_size (int | tuple[int, int]): Side(s) of the pooled RoI.
        scales (Sequence[float]): 1 / stride of each feature level, finest
            first.
        sampling_ratio (int): Samples per bin side.
        pooler_type (str): ``'ROIAlignV2'`` (half-pixel aligned, the
            official configs) or ``'ROIAlign'``.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]],
                 scales: Sequence[float], sampling_ratio: int,
                 pooler_type: str) -> None:
        super().__init__()
        if pooler_type not in ('ROIAlign', 'ROIAlignV2'):
            raise ValueError(f'the ROIPooler stand-in implements ROIAlign '
                             f'and ROIAlignV2, not {pooler_type!r}')
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(output_size)
        self.scales = tuple(scales)
        self.sampling_ratio = sampling_ratio
        self.aligned = pooler_type == 'ROIAlignV2'
        self.min_level = int(-math.log2(scales[0]))
        self.max_level = int(-math.log2(scales[-1]))

    def forward(self, x: List[Tensor], box_lists: List[Boxes]) -> Tensor:
        """Pool every box of every image.

        Args:
            x (list[Tensor]): Feature levels (B, C, H_l, W_l), finest first.
            box_lists (list[Boxes]): B lists of (n_b, 4) xyxy boxes in input
                pixels.

        Returns:
            Tensor: (sum n_b, C, *output_size), in the boxes' order.
        """
        boxes = cat([b.tensor for b in box_lists])
        image_inds = torch.cat([
            torch.full((len(b), 1), i, dtype=boxes.dtype, device=boxes.device)
            for i, b in enumerate(box_lists)
        ])
        rois = torch.cat([image_inds, boxes], dim=1).to(x[0].dtype)
        if len(self.scales) == 1:
            return self._pool(x[0], rois, 0)
        levels = box_levels(boxes, self.min_level, self.max_level)
        output = x[0].new_zeros((len(rois), x[0].shape[1]) + self.output_size)
        for level in range(len(self.scales)):
            inds = torch.nonzero(levels == level)[:, 0]
            output.index_put_((inds, ), self._pool(x[level], rois[inds],
                                                   level))
        return output

    def _pool(self, feat: Tensor, rois: Tensor, level: int) -> Tensor:
        return roi_align(feat, rois, self.output_size, self.scales[level],
                         self.sampling_ratio, self.aligned)


class CfgNode(dict):
    """detectron2's ``CfgNode`` as far as the official modules use it: a
    dict whose keys read and write as attributes."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f'the official config has no {name!r}') from None

    def __setattr__(self, name: str, value) -> None:
        self[name] = value

    def merge_dict(self, values: dict) -> None:
        """Merge a (nested) dict, e.g. a parsed yaml file, creating the
        nodes it names."""
        for key, value in values.items():
            if isinstance(value, dict):
                node = self.setdefault(key, CfgNode())
                node.merge_dict(value)
            else:
                self[key] = tuple(value) if isinstance(value, list) else value


def c2_msra_fill(module: nn.Module) -> None:
    """fvcore's ``c2_msra_fill``: kaiming-normal weight (fan out, ReLU),
    zero bias (Caffe2's MSRAFill)."""
    nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_xavier_fill(module: nn.Module) -> None:
    """fvcore's ``c2_xavier_fill``: kaiming-uniform weight with a = 1
    (Caffe2's XavierFill), zero bias."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def sigmoid_focal_loss(inputs: Tensor,
                       targets: Tensor,
                       alpha: float = -1,
                       gamma: float = 2,
                       reduction: str = 'none') -> Tensor:
    """fvcore's ``sigmoid_focal_loss`` (RetinaNet): binary cross-entropy
    times ``(1 - p_t) ** gamma``, weighted by ``alpha_t`` when ``alpha`` >=
    0; ``reduction`` ``'none'``, ``'mean'`` or ``'sum'``."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(
        inputs, targets, reduction='none')
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t)**gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    return loss


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def standin_tree(library: str) -> Dict[str, types.ModuleType]:
    """The stand-in modules of ``'detectron2'`` or ``'fvcore'`` by their
    import names (the packages on the way included)."""
    if library == 'detectron2':
        return {
            'detectron2':
            _module('detectron2'),
            'detectron2.config':
            _module('detectron2.config', CfgNode=CfgNode),
            'detectron2.modeling':
            _module('detectron2.modeling'),
            'detectron2.modeling.poolers':
            _module(
                'detectron2.modeling.poolers', ROIPooler=ROIPooler, cat=cat),
            'detectron2.structures':
            _module('detectron2.structures', Boxes=Boxes),
        }
    if library == 'fvcore':
        weight_init = _module(
            'fvcore.nn.weight_init',
            c2_msra_fill=c2_msra_fill,
            c2_xavier_fill=c2_xavier_fill)
        return {
            'fvcore':
            _module('fvcore'),
            'fvcore.nn':
            _module(
                'fvcore.nn',
                weight_init=weight_init,
                sigmoid_focal_loss_jit=sigmoid_focal_loss),
            'fvcore.nn.weight_init':
            weight_init,
        }
    raise ValueError(f'no stand-ins for {library!r}')


def installed(library: str) -> bool:
    """Whether the real ``library`` can be imported (and is not one of our
    stand-ins)."""
    module = sys.modules.get(library)
    if module is not None:
        return getattr(module, '__file__', None) is not None
    return importlib.util.find_spec(library) is not None


@contextlib.contextmanager
def standin_modules(libraries: Sequence[str] = LIBRARIES,
                    replace_installed: bool = False) -> Iterator[List[str]]:
    """Install the stand-ins of the ``libraries`` that are not installed
    (of all of them with ``replace_installed``) into ``sys.modules``; yield
    the names of the stand-in libraries and restore ``sys.modules`` on
    exit."""
    missing = [
        lib for lib in libraries if replace_installed or not installed(lib)
    ]
    modules = {}
    for library in missing:
        modules.update(standin_tree(library))
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield missing
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
