"""The official head and ours, side by side on the same weights and inputs.

:func:`compare_version` builds the official decoder, criterion and
learnable proposals (the parts of the official detector that the head
needs) in float64 with seeded weights, converts their state dict through
``querypose_mm.utils.official_checkpoint`` and loads it strictly into our
head, then runs one training forward + backward and inference on both with
the same FPN features and persons.

The official inference is the decoder's forward in eval mode followed by
the official detector's post-processing formulas (pose score
``sigmoid(class) * mean_k(keypoint score)``, keypoints ``(mu + 0.5) * w +
x1`` in the last stage's box) on every query: the official detector's
``inference`` is not called, since at the v1 revision it indexes the
(B * N, K, 3) keypoints of every image as if they were (N, K, 3).
"""
import math
import time
from types import SimpleNamespace
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import Tensor
from torch.distributions import MultivariateNormal

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from querypose_mm.models.utils import (keypoint_scores_from_sigma,
                                       keypoints_from_box_frame)
from querypose_mm.utils.official_checkpoint import convert_state_dict
from .official_source import OfficialModules, official_cfg
from .report import (Pairs, VersionResult, max_abs_difference, pairs_of,
                     ratio_to_largest)

# official loss names -> ours
LOSS_TERMS = {
    'loss_ce': 'loss_cls',
    'loss_bbox': 'loss_bbox',
    'loss_giou': 'loss_iou',
    'loss_kps': 'loss_kpt'
}
STRIDES = (4, 8, 16, 32)
DTYPE = torch.float64


class Inputs(NamedTuple):
    """The features and persons both sides get.

    Attributes:
        feats: FPN levels P2-P5, (B, C, H_l, W_l), of the padded batch.
        image_hw: (h, w) of each unpadded image.
        boxes: Per image, (n, 4) xyxy person boxes in input pixels.
        keypoints: Per image, (n, K, 2) keypoints in input pixels.
        visible: Per image, (n, K) COCO visibility (0: not labelled).
    """
    feats: List[Tensor]
    image_hw: List[Tuple[int, int]]
    boxes: List[Tensor]
    keypoints: List[Tensor]
    visible: List[Tensor]


def make_inputs(image_hw: Sequence[Tuple[int, int]], persons: int,
                num_keypoints: int, channels: int, seed: int) -> Inputs:
    """Seeded FPN features and COCO-like persons.

    The batch is padded to the largest image, rounded up to 32. Each person
    has a box of 20-60 % of the image width and 30-80 % of its height, and
    keypoints spread over the box grown by 10 % on each side (so some fall
    outside it, where the RLE loss ignores them), each unlabelled (0, 0, 0)
    with probability 0.2, else visible 1 or 2. Every coordinate is a float32
    number, since our data path reads the annotations as float32.
    """
    gen = torch.Generator().manual_seed(seed)
    pad_h = math.ceil(max(h for h, _ in image_hw) / 32) * 32
    pad_w = math.ceil(max(w for _, w in image_hw) / 32) * 32
    feats = [
        torch.randn(
            len(image_hw),
            channels,
            pad_h // stride,
            pad_w // stride,
            generator=gen,
            dtype=DTYPE) for stride in STRIDES
    ]
    boxes, keypoints, visible = [], [], []
    for h, w in image_hw:
        size = torch.rand(persons, 2, generator=gen, dtype=DTYPE) * \
            torch.tensor([0.4, 0.5], dtype=DTYPE) + \
            torch.tensor([0.2, 0.3], dtype=DTYPE)
        wh = size * torch.tensor([w, h], dtype=DTYPE)
        xy1 = torch.rand(
            persons, 2, generator=gen, dtype=DTYPE) * (
                torch.tensor([w, h], dtype=DTYPE) - wh)
        box = torch.cat([xy1, xy1 + wh], dim=1)
        spread = torch.rand(
            persons, num_keypoints, 2, generator=gen, dtype=DTYPE) * 1.2 - 0.1
        kpt = xy1[:, None] + spread * wh[:, None]
        vis = torch.randint(
            1, 3, (persons, num_keypoints), generator=gen).to(DTYPE)
        vis[torch.rand(persons, num_keypoints, generator=gen) < 0.2] = 0
        kpt[vis == 0] = 0
        boxes.append(box.float().to(DTYPE))
        keypoints.append(kpt.float().to(DTYPE))
        visible.append(vis)
    return Inputs(feats, list(image_hw), boxes, keypoints, visible)


# ----------------------------------------------------------------------
# the official side
# ----------------------------------------------------------------------
class OfficialModel(nn.Module):
    """The official detector's head parts, under its own attribute names
    (so that the state dict has the official checkpoint's keys)."""

    def __init__(self, official: OfficialModules, cfg) -> None:
        super().__init__()
        sparse = cfg.MODEL.SparseRCNN
        self.api = official.api
        self.num_classes = sparse.NUM_CLASSES
        shapes = {
            f'p{int(math.log2(s))}':
            SimpleNamespace(channels=sparse.HIDDEN_DIM, stride=s)
            for s in STRIDES
        }
        self.matcher = official.loss.HungarianMatcher(
            cfg=cfg,
            cost_class=sparse.CLASS_WEIGHT,
            cost_bbox=sparse.L1_WEIGHT,
            cost_giou=sparse.GIOU_WEIGHT,
            use_focal=sparse.USE_FOCAL)
        self.weight_dict = dict(
            loss_ce=sparse.CLASS_WEIGHT,
            loss_bbox=sparse.L1_WEIGHT,
            loss_giou=sparse.GIOU_WEIGHT,
            loss_kps=1.0)
        self.init_proposal_features = nn.Embedding(sparse.NUM_PROPOSALS,
                                                   sparse.HIDDEN_DIM)
        self.init_proposal_boxes = nn.Embedding(sparse.NUM_PROPOSALS, 4)
        self.part_query = nn.Embedding(cfg.MODEL.QueryPose.NUM_PART,
                                       cfg.MODEL.QueryPose.PART_DIM)
        extra = (self.matcher, ) if self.api == 'v1' else ()
        self.head = official.head.Decoder(cfg, shapes, *extra)
        self.criterion = official.loss.SetCriterion(
            cfg=cfg,
            num_classes=sparse.NUM_CLASSES,
            matcher=self.matcher,
            weight_dict=self.weight_dict,
            eos_coef=sparse.NO_OBJECT_WEIGHT,
            losses=['labels', 'boxes', 'keypoints'],
            use_focal=sparse.USE_FOCAL)
        self.box_cxcywh_to_xyxy = official.box_ops.box_cxcywh_to_xyxy

    def set_float64(self) -> None:
        """Everything in float64, the flow's prior included (a
        ``torch.distributions`` object, which ``.double()`` skips)."""
        self.double()
        self.criterion.flow.flow.prior = MultivariateNormal(
            torch.zeros(2, dtype=DTYPE), torch.eye(2, dtype=DTYPE))

    def decode(self, feats: List[Tensor], whwh: Tensor, targets=None):
        """The decoder on the learnable proposals (the official detector's
        forward up to its head), with the targets in v1 training."""
        boxes = self.box_cxcywh_to_xyxy(
            self.init_proposal_boxes.weight)[None] * whwh[:, None]
        kwargs = dict(gt=targets) if self.api == 'v1' and self.training \
            else {}
        return self.head(feats, boxes, self.init_proposal_features.weight,
                         self.part_query.weight, **kwargs)


def official_targets(inputs: Inputs) -> List[dict]:
    """The official detector's ``prepare_targets`` entries the criterion
    and matcher read, in float64."""
    targets = []
    for (h, w), box, kpt, vis in zip(inputs.image_hw, inputs.boxes,
                                     inputs.keypoints, inputs.visible):
        whwh = torch.tensor([w, h, w, h], dtype=DTYPE)
        cxcywh = torch.cat(
            [(box[:, :2] + box[:, 2:]) / 2, box[:, 2:] - box[:, :2]],
            dim=1) / whwh
        targets.append(
            dict(
                labels=torch.zeros(len(box), dtype=torch.long),
                boxes=cxcywh,
                boxes_xyxy=box,
                image_size_xyxy=whwh,
                image_size_xyxy_tgt=whwh[None].repeat(len(box), 1),
                kps_coord=kpt,
                kps_vis=vis[..., None]))
    return targets


def run_official(model: OfficialModel, inputs: Inputs,
                 num_stages: int) -> dict:
    """One training step (forward + backward) and inference of the
    official model; see :func:`run_ours` for what is returned."""
    whwh = torch.tensor([[w, h, w, h] for h, w in inputs.image_hw],
                        dtype=DTYPE)
    targets = official_targets(inputs)
    calls = []
    hook = model.matcher.register_forward_hook(
        lambda module, args, out: calls.append(out))
    feats = [f.clone().requires_grad_() for f in inputs.feats]
    model.train()
    decoded = model.decode(feats, whwh, targets)
    cls, boxes, kpts, sigmas = decoded[:4]
    output = dict(
        pred_logits=cls[-1],
        pred_boxes=boxes[-1],
        pred_keypoints=kpts[-1],
        pred_sgm=sigmas[-1],
        aux_outputs=[
            dict(pred_logits=a, pred_boxes=b, pred_keypoints=c, pred_sgm=d)
            for a, b, c, d in zip(cls[:-1], boxes[:-1], kpts[:-1], sigmas[:-1])
        ])
    extra = (decoded[4], ) if model.api == 'v1' else ()
    loss_dict = model.criterion(output, None, targets, *extra)
    hook.remove()
    losses = {}
    for stage in range(num_stages):
        suffix = '' if stage == num_stages - 1 else f'_{stage}'
        for official, ours in LOSS_TERMS.items():
            losses[f's{stage}.{ours}'] = \
                loss_dict[official + suffix] * model.weight_dict[official]
    sum(losses.values()).backward()
    # v1 matches in the decoder, stage by stage; before, the criterion
    # matched the last stage first, then the others in order
    if model.api != 'v1':
        calls = calls[1:] + calls[:1]
    matches = []
    offsets = np.cumsum([0] + [len(b) for b in inputs.boxes])
    num_queries = cls.shape[2]
    for indices in calls:
        pairs: Pairs = []
        for image, (query, gt) in enumerate(indices):
            pairs += zip((query + image * num_queries).tolist(),
                         (gt + int(offsets[image])).tolist())
        matches.append(sorted(pairs))
    result = _step_result(losses, matches, feats)
    del decoded, cls, boxes, kpts, sigmas, output, loss_dict, losses

    model.eval()
    with torch.no_grad():
        cls, boxes, kpts = model.decode(inputs.feats, whwh)[:3]
    batch_size, num_queries = cls.shape[1:3]
    last_boxes = boxes[-1]
    pose = kpts[-1].reshape(batch_size, num_queries, -1, 3)
    wh = (last_boxes[..., 2:] - last_boxes[..., :2])[:, :, None]
    result['keypoints'] = (pose[..., :2] + 0.5) * wh + \
        last_boxes[:, :, None, :2]
    result['scores'] = cls[-1][..., 0].sigmoid() * pose[..., 2].mean(-1)
    return result


# ----------------------------------------------------------------------
# our side
# ----------------------------------------------------------------------
def our_data_samples(inputs: Inputs) -> List[PoseDataSample]:
    """The persons as mmpose data samples, as our data pipeline packs
    them."""
    samples = []
    for (h, w), box, kpt, vis in zip(inputs.image_hw, inputs.boxes,
                                     inputs.keypoints, inputs.visible):
        sample = PoseDataSample(
            metainfo=dict(img_shape=(h, w), input_size=(w, h)))
        sample.gt_instances = InstanceData(
            bboxes=box.numpy(),
            keypoints=kpt.numpy(),
            keypoints_visible=vis.numpy())
        samples.append(sample)
    return samples


def run_ours(head: nn.Module, inputs: Inputs) -> dict:
    """One training step (forward + backward) and inference of our head.

    Returns:
        dict: ``losses`` (``s{i}.{term}`` -> float), ``matches`` (per stage,
        sorted (query, gt) pairs), ``grads`` (per level, the gradient of
        the summed losses w.r.t. the features), ``keypoints`` (B, N, K, 2)
        in input pixels and ``scores`` (B, N) of inference.
    """
    samples = our_data_samples(inputs)
    matches = []
    match_stage = head.criterion.match_stage

    def recording_match_stage(*args, **kwargs):
        match = match_stage(*args, **kwargs)
        matches.append(pairs_of(match.query_inds, match.gt_inds))
        return match

    head.criterion.match_stage = recording_match_stage
    feats = [f.clone().requires_grad_() for f in inputs.feats]
    head.train()
    try:
        losses = head.loss(feats, samples)
    finally:
        del head.criterion.match_stage
    sum(losses.values()).backward()
    result = _step_result(losses, matches, feats)
    del losses

    head.eval()
    img_whwh = torch.tensor([[w, h, w, h] for h, w in inputs.image_hw],
                            dtype=DTYPE)
    with torch.no_grad():
        last = head.run_stages(inputs.feats, img_whwh)[-1]
    batch_size, num_queries = last.cls_scores.shape[:2]
    # every query is decoded at inference, in flat order
    result['keypoints'] = keypoints_from_box_frame(
        last.coords, last.keypoint_boxes).view(batch_size, num_queries, -1, 2)
    result['scores'] = last.cls_scores[..., 0].sigmoid() * \
        keypoint_scores_from_sigma(last.sigma_logits).view(
            batch_size, num_queries, -1).mean(-1)
    return result


# ----------------------------------------------------------------------
# both
# ----------------------------------------------------------------------
def _step_result(losses: Dict[str, Tensor], matches: list,
                 feats: List[Tensor]) -> dict:
    """A training step's figures: loss values, matches, feature grads."""
    return dict(
        losses={
            k: v.item()
            for k, v in losses.items()
        },
        matches=matches,
        grads=[f.grad for f in feats])


def seed_weights(model: OfficialModel, seed: int) -> None:
    """Move the official initialisation to arbitrary seeded values, so that
    no tensor is a constant a wrong mapping could hide behind: every 1-D
    parameter (biases, norms) gets noise of 0.1, the proposal boxes random
    centres and sizes, the BatchNorm running statistics random values. The
    box regression weights are damped (x0.01), so that the boxes stay near
    the image over 6 stages: random deltas grow a box up to 6250x a stage,
    and at 1e5 px float64 rounding alone exceeds the 1e-6 px limit."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.add_(
                    0.1 *
                    torch.randn(param.shape, generator=gen, dtype=param.dtype))
            elif '.bboxes_delta.' in name:
                param.mul_(0.01)
        boxes = model.init_proposal_boxes.weight
        num = len(boxes)
        boxes[:, :2] = 0.25 + 0.5 * torch.rand(num, 2, generator=gen)
        boxes[:, 2:] = 0.3 + 0.7 * torch.rand(num, 2, generator=gen)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                shape = module.running_mean.shape
                module.running_mean.copy_(0.1 *
                                          torch.randn(shape, generator=gen))
                module.running_var.copy_(0.5 +
                                         torch.rand(shape, generator=gen))


def build_ours(cfg: Config, light: bool) -> nn.Module:
    """Our head of ``cfg`` as the light or full version, float64."""
    head_cfg = cfg.model.head.copy()
    head_cfg.keypoint_decoder = dict(
        head_cfg.keypoint_decoder, update_instance_query=not light)
    return MODELS.build(head_cfg).to(DTYPE)


def converted_state(official: OfficialModel, head: nn.Module,
                    part_groups) -> Tuple[Dict[str, Tensor], dict]:
    """``official``'s state dict through the project's converter, and our
    head's, both under our full-model keys (``head.`` first)."""
    target = {f'head.{k}': v for k, v in head.state_dict().items()}
    converted, _, _ = convert_state_dict(official.state_dict(), target,
                                         part_groups)
    return converted, target


def load_converted(head: nn.Module, official: OfficialModel,
                   part_groups) -> None:
    """Load ``official``'s converted weights strictly into ``head``."""
    converted, _ = converted_state(official, head, part_groups)
    state_dict = type(converted)(
        (k[len('head.'):], v) for k, v in converted.items())
    # our module versions of today, so that no upgrade hook renames keys
    state_dict._metadata = head.state_dict()._metadata
    head.load_state_dict(state_dict, strict=True)


def compare_version(official_modules: OfficialModules, cfg: Config,
                    light: bool, inputs: Inputs, seed: int,
                    yaml_name: str) -> VersionResult:
    """Build both sides of one version and compare them (see the module
    docstring)."""
    start = time.perf_counter()
    ocfg = official_cfg(official_modules, yaml_name, light=light)
    torch.manual_seed(seed)
    official = OfficialModel(official_modules, ocfg)
    official.set_float64()
    seed_weights(official, seed)
    head = build_ours(cfg, light)
    part_groups = cfg.model.head.part_groups
    load_converted(head, official, part_groups)
    # only the gradients w.r.t. the features are compared: no parameter
    # gradients (half the backward of the conv stacks, and 8 bytes a
    # parameter, 2.4 GB for each full decoder)
    official.requires_grad_(False)
    head.requires_grad_(False)

    theirs = run_official(official, inputs, head.num_stages)
    ours = run_ours(head, inputs)

    # the BatchNorm statistics after the step, the official ones through
    # the converter
    converted, target = converted_state(official, head, part_groups)
    bn_stats = {
        k: ratio_to_largest(converted[k], target[k])
        for k in target if k.endswith(('running_mean', 'running_var'))
    }
    return VersionResult(
        version='light' if light else 'full',
        losses={
            k: (theirs['losses'][k], ours['losses'][k])
            for k in theirs['losses']
        },
        matches=list(zip(theirs['matches'], ours['matches'])),
        feature_grads=[
            ratio_to_largest(a, b)
            for a, b in zip(theirs['grads'], ours['grads'])
        ],
        bn_stats=bn_stats,
        keypoints_extent=theirs['keypoints'].abs().max().item(),
        keypoints_px=max_abs_difference(theirs['keypoints'],
                                        ours['keypoints']),
        scores=max_abs_difference(theirs['scores'], ours['scores']),
        seconds=time.perf_counter() - start)
