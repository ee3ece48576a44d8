import warnings
from typing import Dict, Mapping, Sequence, Union

import torch
from torch import Tensor


def checked_choice(owner: str,
                   value,
                   choices: Sequence,
                   former_names: Mapping = {},
                   renamed_note: str = ''):
    """``value`` if it is one of ``choices``; a former name is replaced by
    today's with a DeprecationWarning.

    Args:
        owner (str): The setting, as the user writes it, for the messages.
        value: What was given.
        choices (Sequence): The allowed values.
        former_names (Mapping): Former name -> today's.
        renamed_note (str): Appended to the warning about a former name.

    Raises:
        ValueError: Naming ``owner`` and the choices, for any other value.
    """
    if value in former_names:
        warnings.warn(
            f'{owner}={value!r} is now called {former_names[value]!r}'
            f'{renamed_note}',
            DeprecationWarning,
            stacklevel=3)
        return former_names[value]
    if value not in choices:
        raise ValueError(
            f'{owner} must be one of {tuple(choices)}, got {value!r}')
    return value


def check_fpn_feats(feats: Sequence[Tensor], num_levels: int,
                    channels: int) -> None:
    """Fail clearly on a neck that does not fit the head."""
    if len(feats) < num_levels:
        raise ValueError(
            f'QueryPoseHead needs {num_levels} feature levels '
            f'(P2..) for its box RoI extractor, got {len(feats)}; set '
            'the neck\'s num_outs accordingly')
    for level, feat in enumerate(feats[:num_levels]):
        if feat.size(1) != channels:
            raise ValueError(
                f'feature level {level} has {feat.size(1)} channels but '
                f'QueryPoseHead.in_channels is {channels}; make '
                'the neck\'s out_channels and the head\'s in_channels '
                '(and its RoI extractors\' out_channels) equal')


def check_finite_stage(stage: int, cls_scores: Tensor, boxes: Tensor) -> None:
    """Fail clearly on non-finite stage outputs: the next RoIAlign would stop
    on an internal assert, or scipy's matching on 'cost matrix is
    infeasible'.

    Called at inference (a host sync per stage); in training the matching
    checks the stage on its copy to the host
    (:meth:`QueryPoseCriterion.match_stage`), and lets it pass under
    autocast, where the ``GradScaler`` skips the step. Skipped while
    tracing (ONNX export), where it would be a constant.
    """
    if torch.jit.is_tracing():
        return
    if not (torch.isfinite(cls_scores).all() and torch.isfinite(boxes).all()):
        raise FloatingPointError(
            f'stage {stage} of QueryPoseHead predicted non-finite class '
            'scores or boxes; the training diverged (lower the lr, keep '
            'clip_grad) or the input or weights hold NaN/inf')


def pose_roi_size(pose_roi_extractor, keypoint_decoder: dict) -> int:
    """The side of the pose RoI, which the keypoint decoder must be built
    for; a different ``keypoint_decoder.roi_size`` is a clear error."""
    output_size = tuple(pose_roi_extractor.roi_layers[0].output_size)
    side = keypoint_decoder.get('roi_size', output_size[0])
    if output_size != (side, side):
        raise ValueError(
            f'pose_roi_extractor.roi_layer.output_size ({output_size}) must '
            f'match keypoint_decoder.roi_size ({side}): set both to the same '
            'side, or leave keypoint_decoder.roi_size out')
    return side


def check_positive_ints(owner: str, **settings) -> None:
    """Fail at build on a size that would only crash in the forward (no
    queries, no stages, nobody kept)."""
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f'{owner}.{name} must be a positive integer, got {value!r}')


INSTANCE_QUERY_FLOWS = ('serial', 'box_only')


def instance_query_flows(flow: Union[str, dict]) -> Dict[str, str]:
    """``model.head.instance_query_flow`` as ``{'train': .., 'test': ..}``.

    A string sets both phases; a dict with the keys ``train`` and ``test``
    sets each. Each value is ``'serial'`` (Fig. 3b) or ``'box_only'``
    (Fig. 3a).
    """
    flows = dict(flow) if isinstance(flow, dict) else dict(
        train=flow, test=flow)
    if sorted(flows) != ['test', 'train'
                         ] or not all(value in INSTANCE_QUERY_FLOWS
                                      for value in flows.values()):
        raise ValueError(
            "model.head.instance_query_flow must be 'serial' (Fig. 3b), "
            "'box_only' (Fig. 3a) or dict(train=..., test=...) of these, "
            f'got {flow!r}')
    return flows


# 'all_queries': the official code of the paper and of the released
# checkpoints (e249749, 2022-12); 'matched_only': the official "v1" code
# (bf0814f, 2023-05), the repository's HEAD
TRAIN_REGIMES = ('all_queries', 'matched_only')
# 'matched_only' was called 'official' before the official history showed
# two official regimes
_FORMER_REGIME_NAMES = {'official': 'matched_only'}


def checked_train_regime(regime: str, train_flow: str,
                         updates_instance_query: bool) -> str:
    """``model.head.train_regime``, checked; a former name is replaced by
    today's with a warning.

    ``'matched_only'`` with the full version's serial Q_I flow in training
    hands the refined Q_I of the matched queries alone to the next box
    decoder: its classifier can read which queries were matched (the
    official v1 code does this; the quick start learns the shortcut, AP
    0.22). That combination is warned about once, here.
    """
    regime = checked_choice(
        'model.head.train_regime', regime, TRAIN_REGIMES, _FORMER_REGIME_NAMES,
        " (the official v1 regime); the paper's "
        "code is 'all_queries'")
    if (regime == 'matched_only' and train_flow == 'serial'
            and updates_instance_query):
        warnings.warn(
            "model.head.train_regime='matched_only' with the full version's "
            'serial Q_I flow in training: only the matched queries hand a '
            'refined Q_I to the next box decoder, so its classifier can read '
            'the match (the official v1 code; the paper trains '
            "'all_queries'). Use train_regime='all_queries', the light "
            "version or instance_query_flow=dict(train='box_only', ...) "
            'unless you mean to reproduce v1.')
    return regime
