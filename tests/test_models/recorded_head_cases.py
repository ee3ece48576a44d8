"""Fixed inputs and the outputs recorded from them, for the head regression
test (``test_head_recorded_outputs.py``).

The same :func:`run_cases` (with the head options of then) produced
``tests/data/recorded_head/outputs_float64.pt`` with the head as it was
before the restructuring (commit 35d0a57, see ``tests/data/PROVENANCE.md``);
it touches the head only through its stable interface (``build``,
``load_state_dict``, ``loss``, ``predict``), so the test runs the very same
code on today's head.
"""
import collections
from typing import Callable, Dict, List

import numpy as np
import torch
from mmengine.structures import InstanceData

from mmpose.structures import PoseDataSample

# two unpadded inputs in a 256 x 320 padded batch
IMAGE_SHAPES = [(256, 320), (240, 304)]
PADDED_HW = (256, 320)
STRIDES = (4, 8, 16, 32)
PERSONS = (3, 2)
NUM_KEYPOINTS = 17


def _uniform(seed: int,
             shape: tuple,
             mean: float = 0.0,
             std: float = 1.0) -> np.ndarray:
    """Seeded draws of mean ``mean`` and standard deviation ``std``, in
    float32, the same on every CPU.

    Uniform draws are integer bits scaled exactly, and the affine map is two
    correctly rounded float64 operations before the one rounding to float32;
    ``torch.randn`` and ``torch.linspace`` have vectorised kernels that
    round otherwise without AVX2 (``ATEN_CPU_CAPABILITY=default``).
    """
    uniform = np.random.Generator(np.random.PCG64(seed)).random(shape)
    return (mean + std * np.sqrt(3.0) * (2.0 * uniform - 1.0)).astype(
        np.float32)


def make_feats(channels: int,
               requires_grad: bool,
               dtype: torch.dtype = torch.float32) -> List[torch.Tensor]:
    """Seeded FPN maps P2..P5, (2, C, H/s, W/s), independent of the model;
    drawn in float32, so every ``dtype`` holds the same values."""
    feats = []
    for level, stride in enumerate(STRIDES):
        shape = (2, channels, PADDED_HW[0] // stride, PADDED_HW[1] // stride)
        feats.append(
            torch.from_numpy(_uniform(
                2022 + level, shape)).to(dtype).requires_grad_(requires_grad))
    return feats


def make_samples() -> List[PoseDataSample]:
    """Two images with 3 and 2 persons: boxes, keypoints inside them (some
    outside: the loss weights those 0), a few unlabelled keypoints."""
    rng = np.random.RandomState(7)
    samples = []
    for (h, w), n in zip(IMAGE_SHAPES, PERSONS):
        xy1 = rng.uniform([0, 0], [w * 0.6, h * 0.5], (n, 2))
        wh = rng.uniform([40, 80], [w * 0.4, h * 0.5], (n, 2))
        boxes = np.concatenate([xy1, xy1 + wh], 1).astype(np.float32)
        rel = rng.uniform(-0.05, 1.05, (n, NUM_KEYPOINTS, 2))
        keypoints = (xy1[:, None] + rel * wh[:, None]).astype(np.float32)
        visible = (rng.rand(n, NUM_KEYPOINTS) > 0.2).astype(np.float32)
        sample = PoseDataSample(
            metainfo=dict(
                img_shape=(h, w),
                input_size=(w, h),
                input_center=np.array([w / 2, h / 2]),
                input_scale=np.array([w, h], dtype=np.float32)))
        sample.gt_instances = InstanceData(
            bboxes=boxes, keypoints=keypoints, keypoints_visible=visible)
        samples.append(sample)
    return samples


def state_dict_spec(state_dict: dict, exact_below: int = 1024) -> dict:
    """A compact description of a state dict from which
    :func:`make_state_dict` rebuilds well-scaled weights: small or constant
    tensors exactly, the others as (shape, mean, std) to draw from, plus
    the module versions (``_metadata``)."""
    tensors = {}
    for key, value in state_dict.items():
        if (value.numel() < exact_below or not value.is_floating_point()
                or value.std() == 0):
            tensors[key] = ('exact', value.clone())
        else:
            tensors[key] = ('normal', tuple(value.shape), value.mean().item(),
                            value.std().item())
    return dict(tensors=tensors, metadata=dict(state_dict._metadata))


def make_state_dict(spec: dict, seed: int = 0) -> collections.OrderedDict:
    """Seeded weights of :func:`state_dict_spec`'s description (uniform
    draws of each tensor's mean and standard deviation), with the
    proposal boxes spread over the image and the box regression damped, so
    the boxes stay near the persons and the keypoint losses see keypoints
    inside them."""
    state_dict = collections.OrderedDict()
    for index, key in enumerate(sorted(spec['tensors'])):
        entry = spec['tensors'][key]
        if entry[0] == 'exact':
            state_dict[key] = entry[1].clone()
            continue
        shape, mean, std = entry[1:]
        if key.endswith('fc_reg.weight'):
            std *= 0.01
        state_dict[key] = torch.from_numpy(
            _uniform(1000 * seed + index, shape, mean, std))
    boxes = state_dict['init_proposal_bboxes.weight']
    grid = np.linspace(0.2, 0.8, len(boxes))
    boxes.copy_(
        torch.from_numpy(
            np.stack([grid, grid[::-1], 0.3 + 0.2 * grid, 0.4 + 0.3 * grid],
                     1).astype(np.float32)))
    state_dict._metadata = collections.OrderedDict(spec['metadata'])
    return state_dict


def _predictions(preds) -> Dict[str, torch.Tensor]:
    out = {}
    for i, pred in enumerate(preds):
        for key in ('keypoints', 'keypoint_scores', 'bboxes', 'bbox_scores'):
            out[f'{i}.{key}'] = torch.from_numpy(np.asarray(pred[key]))
    return out


def run_cases(build_head: Callable[[Dict], torch.nn.Module],
              state_dicts: Dict[str, dict],
              dtype: torch.dtype = torch.float32) -> Dict[str, torch.Tensor]:
    """Losses, input gradients and predictions of every head path.

    Args:
        build_head: ``f(overrides) -> head`` with the quick-start head's
            settings updated by ``overrides`` (options of the head, or
            ``keypoint_decoder`` options under that key).
        state_dicts: ``'full'`` and ``'light'`` head weights.
        dtype: What the head and the features are computed in (the
            weights and features hold the same values in any).

    Returns:
        dict[str, Tensor]: ``'<case>/<name>'`` -> value.
    """
    light = dict(keypoint_decoder=dict(update_instance_query=False))
    matched_only = dict(train_regime='matched_only')
    cases = {
        # serial Fig. 3(b), every query decoded
        'full':
        ('full',
         dict(train_regime='all_queries', instance_query_flow='serial')),
        # Fig. 3(a), each stage's matched queries decoded in training
        'box_only_matched':
        ('full', dict(matched_only, instance_query_flow='box_only')),
        'light_matched':
        ('light', dict(light, **matched_only, instance_query_flow='serial')),
    }
    results = {}
    for case, (weights, overrides) in cases.items():
        head = build_head(overrides)
        head.load_state_dict(state_dicts[weights])
        head.to(dtype).train()
        feats = make_feats(head.in_channels, requires_grad=True, dtype=dtype)
        losses = head.loss(feats, make_samples())
        total = sum(losses.values())
        grads = torch.autograd.grad(total, feats)
        for name, value in losses.items():
            results[f'{case}/{name}'] = value.detach()
        for level, grad in enumerate(grads):
            # sums over the whole map and a strided sample of it
            results[f'{case}/grad_p{level + 2}/sum'] = grad.sum()
            results[f'{case}/grad_p{level + 2}/sq_sum'] = grad.pow(2).sum()
            results[f'{case}/grad_p{level + 2}/sample'] = grad.flatten(
            )[::97].clone()
        head.eval()
        feats = make_feats(head.in_channels, requires_grad=False, dtype=dtype)
        with torch.no_grad():
            for mode, test_cfg in (('predict', {}), ):
                preds = head.predict(feats, make_samples(), test_cfg=test_cfg)
                for name, value in _predictions(preds).items():
                    results[f'{case}/{mode}/{name}'] = value
    return results
