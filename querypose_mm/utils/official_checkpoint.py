"""Convert the official QueryPose checkpoints (detectron2) to this project.

The official code (github buptxyb666/QueryPose) publishes light HRNet-W32 +
HRFPN and HRNet-W48 + HRFPN_v1 models. :func:`official_model_kind` tells the
neck and the version (light or full) from the keys, and
:func:`convert_state_dict` maps every key of such a state dict to a model
built from one of our configs (``querypose_hrnet-w32-hrfpn[-light]_*``,
``querypose_hrnet-w48-hrfpnv1[-light]_*``):
the pose-HRNet backbone has mmpose's HRNet names, the necks are mmdet's
``HRFPN`` and our ``HRFPNv1``, the box decoders mmdet's ``DIIHead``; the
keypoint decoders' per-part linears become our per-keypoint ones, in
dataset keypoint order. Parameters the official model holds but never uses
are dropped by name; anything else left over, missing or of another shape
is an error that lists it.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

# (official, ours) key patterns, tried in order; the first match wins.
_HEAD_STAGE = r'head\.head_series\.(\d+)\.'
_POSE_STAGE = r'head\.pose_head_series\.(\d+)\.'
_DYNAMIC_CONV = {
    'dynamic_layer': 'dynamic_layer',
    'norm1': 'norm_in',
    'norm2': 'norm_out',
    'out_layer': 'fc_layer',
    'norm3': 'fc_norm',
}
RENAMES: List[Tuple[str, str]] = [
    (r'init_proposal_features\.', r'head.proposals.init_proposal_features.'),
    (r'init_proposal_boxes\.', r'head.proposals.init_proposal_bboxes.'),
    (r'part_query\.', r'head.proposals.init_part_queries.'),
    (r'backbone\.bottom_up\.', r'backbone.'),
    (r'backbone\.reduction_conv\.0\.', r'neck.reduction_conv.conv.'),
    (r'backbone\.fpn_conv\.(\d+)\.', r'neck.fpn_convs.\1.conv.'),
    # HRFPN_v1's lateral 1x1 convs; its first one is unused (dropped)
    (r'backbone\.lateral_conv\.(\d+)\.', 'LATERAL'),
    # box decoders -> mmdet DIIHead
    (_HEAD_STAGE + r'self_attn\.', r'head.box_decoders.\1.attention.attn.'),
    (_HEAD_STAGE + r'norm1\.', r'head.box_decoders.\1.attention_norm.'),
    *[(_HEAD_STAGE + rf'inst_interact\.{old}\.',
       rf'head.box_decoders.\1.instance_interactive_conv.{new}.')
      for old, new in _DYNAMIC_CONV.items()],
    (_HEAD_STAGE + r'norm2\.',
     r'head.box_decoders.\1.instance_interactive_conv_norm.'),
    (_HEAD_STAGE + r'linear1\.', r'head.box_decoders.\1.ffn.layers.0.0.'),
    (_HEAD_STAGE + r'linear2\.', r'head.box_decoders.\1.ffn.layers.1.'),
    (_HEAD_STAGE + r'norm3\.', r'head.box_decoders.\1.ffn_norm.'),
    (_HEAD_STAGE + r'cls_module\.', r'head.box_decoders.\1.cls_fcs.'),
    (_HEAD_STAGE + r'reg_module\.', r'head.box_decoders.\1.reg_fcs.'),
    (_HEAD_STAGE + r'class_logits\.', r'head.box_decoders.\1.fc_cls.'),
    (_HEAD_STAGE + r'bboxes_delta\.', r'head.box_decoders.\1.fc_reg.'),
    # keypoint decoders
    (_POSE_STAGE + r'inst_convs\.', r'head.keypoint_decoders.\1.conv_stack.'),
    (_POSE_STAGE + r'part_embed_generator\.upsample\.',
     r'head.keypoint_decoders.\1.spegm.deconv.'),
    (_POSE_STAGE + r'part_embed_generator\.LSA_conv\.',
     r'head.keypoint_decoders.\1.spegm.part_attention.'),
    (_POSE_STAGE + r'part_embed_generator\.fc\.',
     r'head.keypoint_decoders.\1.spegm.embed.'),
    (_POSE_STAGE + r'updater\.fc1\.',
     r'head.keypoint_decoders.\1.sim.gate.0.'),
    (_POSE_STAGE + r'updater\.norm_fc1\.',
     r'head.keypoint_decoders.\1.sim.gate.1.'),
    (_POSE_STAGE + r'updater\.fc2\.',
     r'head.keypoint_decoders.\1.sim.gate.3.'),
    (_POSE_STAGE + r'kps_self_attn\.',
     r'head.keypoint_decoders.\1.part_attention.'),
    (_POSE_STAGE + r'self_attn_norm\.',
     r'head.keypoint_decoders.\1.part_attention_norm.'),
    (_POSE_STAGE + r'linear1_l\.',
     r'head.keypoint_decoders.\1.part_ffn.layers.0.0.'),
    (_POSE_STAGE + r'linear2_l\.',
     r'head.keypoint_decoders.\1.part_ffn.layers.1.'),
    (_POSE_STAGE + r'norm2_l\.', r'head.keypoint_decoders.\1.part_ffn_norm.'),
    # the full version's Q_I update
    *[(_POSE_STAGE + rf'pose_decoder_inst_interact\.{old}\.',
       rf'head.keypoint_decoders.\1.instance_conv.{new}.')
      for old, new in _DYNAMIC_CONV.items()],
    (_POSE_STAGE + r'inst_norm\.',
     r'head.keypoint_decoders.\1.instance_conv_norm.'),
    (_POSE_STAGE + r'linear1\.',
     r'head.keypoint_decoders.\1.instance_ffn.layers.0.0.'),
    (_POSE_STAGE + r'linear2\.',
     r'head.keypoint_decoders.\1.instance_ffn.layers.1.'),
    (_POSE_STAGE + r'norm2\.',
     r'head.keypoint_decoders.\1.instance_ffn_norm.'),
    # the RLE flow
    (r'criterion\.flow\.flow\.', r'head.criterion.loss_keypoint.flow_model.'),
]
# Parameters the official model has but never uses in its forward pass.
UNUSED = [
    _POSE_STAGE + r'updater\.(fc3|norm_fc3)\.',  # commented out in forward
    r'backbone\.fpn_conv\.4\.',  # a 5th level, computed and discarded
    r'backbone\.lateral_conv\.0\.',  # HRFPN_v1 enters P2 by reduction only
    r'backbone\.bottom_up\.final_layer\.',  # pose-HRNet's heatmap layer
    r'criterion\.empty_weight$',  # softmax classification only
]
# Gathered from one key per part into one tensor (see _gather_parts).
_PART_KEYS = re.compile(_POSE_STAGE +
                        r'(residual_filter|fc_coord|fc_sigma)\.(\d+)\.'
                        r'(?:linear\.)?(weight|bias)$')


def official_model_kind(official: Dict[str, Tensor]) -> Tuple[str, str]:
    """The neck and the version of an official checkpoint, from its keys.

    Returns:
        ``(neck, version)``: ``'HRFPN'`` (HRNet-W32) or ``'HRFPN_v1'``
        (HRNet-W48); ``'full'`` where every keypoint decoder stage holds the
        Q_I update (``pose_decoder_inst_interact``), ``'light'`` where none
        does.

    Raises:
        ValueError: Saying what is missing, for a state dict with no keypoint
            decoder stages, with an unknown neck, or with the Q_I update in
            some stages only.
    """
    stages = {
        int(m.group(1))
        for m in map(re.compile(_POSE_STAGE).match, official) if m
    }
    if not stages:
        raise ValueError(
            'no official QueryPose keypoint decoder in the checkpoint (no '
            "'head.pose_head_series.<stage>.*' keys): it is not a checkpoint "
            'of github buptxyb666/QueryPose')
    if any(k.startswith('backbone.lateral_conv.') for k in official):
        neck = 'HRFPN_v1'
    elif any(k.startswith('backbone.reduction_conv.') for k in official):
        neck = 'HRFPN'
    else:
        raise ValueError(
            "the checkpoint's neck is neither HRFPN (backbone.reduction_conv.*"
            ' without backbone.lateral_conv.*) nor HRFPN_v1 (backbone.'
            'lateral_conv.*), the necks of the released HRNet models; pass '
            '--config with a model whose keys fit')
    update = re.compile(_POSE_STAGE + r'pose_decoder_inst_interact\.')
    updated = {int(m.group(1)) for m in map(update.match, official) if m}
    if updated and updated != stages:
        raise ValueError(
            "the checkpoint holds the full version's Q_I update "
            '(pose_decoder_inst_interact) in keypoint decoder stages '
            f'{sorted(updated)} but not in {sorted(stages - updated)}: '
            'neither the light nor the full version')
    return neck, 'full' if updated else 'light'


def load_official_checkpoint(path: str,
                             trust: bool = False
                             ) -> 'OrderedDict[str, Tensor]':
    """The state dict of an official checkpoint file.

    Accepts detectron2's checkpoint (a dict whose ``model`` entry is the
    state dict) or a bare state dict. ``weights_only`` loading unless
    ``trust`` (the file may then run code while loading).
    """
    try:
        checkpoint = torch.load(
            path, map_location='cpu', weights_only=not trust)
    except Exception as error:
        hint = '' if trust else (
            ' If the file is a detectron2 checkpoint you trust that holds '
            'other objects, pass --trust to load it with weights_only=False.')
        raise ValueError(f'{path} could not be read as a torch checkpoint '
                         f'({type(error).__name__}: {error}).{hint}') from None
    state_dict = checkpoint.get('model', checkpoint) if isinstance(
        checkpoint, dict) else None
    if 'state_dict' in (checkpoint if isinstance(checkpoint, dict) else {}):
        raise ValueError(f'{path} is an mmengine checkpoint (it has '
                         '"state_dict"), not an official QueryPose one')
    if not isinstance(state_dict, dict) or not state_dict or not all(
            isinstance(v, Tensor) for v in state_dict.values()):
        raise ValueError(
            f'{path} is not an official QueryPose checkpoint: expected a '
            'dict of tensors, or a dict whose "model" entry is one')
    if not any(k.startswith('head.pose_head_series.') for k in state_dict):
        raise ValueError(f'{path} holds no QueryPose keypoint decoder '
                         '("head.pose_head_series.*"); first keys: '
                         f'{sorted(state_dict)[:5]}')
    return OrderedDict(state_dict)


def _gather_parts(
    official: Dict[str, Tensor], part_groups: Sequence[Sequence[int]]
) -> Tuple[Dict[str, Tensor], List[str]]:
    """The per-part official linears as our per-keypoint / concatenated
    tensors, and the official keys used.

    ``residual_filter.p`` (d_p x C) of part p -> rows ``p * d_p:(p + 1) *
    d_p`` of ``instance_to_part``; ``fc_coord.p`` / ``fc_sigma.p`` (2|p| x
    d_p): rows 2j, 2j + 1 are x, y of keypoint ``part_groups[p][j]`` ->
    ``coord_head`` / ``sigma_head`` ``weight[k]`` (d_p x 2), ``bias[k]``.
    """
    found: Dict[Tuple[str, str, str], Dict[int, Tensor]] = {}
    used = []
    for key, value in official.items():
        match = _PART_KEYS.match(key)
        if match:
            stage, kind, part, param = match.groups()
            found.setdefault((stage, kind, param), {})[int(part)] = value
            used.append(key)
    converted = {}
    num_keypoints = sum(len(g) for g in part_groups)
    for (stage, kind, param), parts in found.items():
        if sorted(parts) != list(range(len(part_groups))):
            raise ValueError(
                f'stage {stage} has {kind} parts {sorted(parts)}, but the '
                f'config has {len(part_groups)} parts')
        prefix = f'head.keypoint_decoders.{stage}.'
        if kind == 'residual_filter':
            converted[f'{prefix}instance_to_part.{param}'] = torch.cat(
                [parts[p] for p in range(len(part_groups))])
            continue
        name = 'coord_head' if kind == 'fc_coord' else 'sigma_head'
        rows = parts[0]
        per_keypoint = rows.new_empty((num_keypoints, 2) + rows.shape[1:])
        for p, group in enumerate(part_groups):
            if len(parts[p]) != 2 * len(group):
                raise ValueError(
                    f'stage {stage} {kind}.{p} has {len(parts[p])} outputs, '
                    f'the config\'s part {group} needs {2 * len(group)}')
            per_keypoint[list(group)] = parts[p].view(
                len(group), 2, *rows.shape[1:])
        # ours: weight (K, d_p, 2), bias (K, 2)
        converted[f'{prefix}{name}.{param}'] = (
            per_keypoint.transpose(1, 2).contiguous()
            if param == 'weight' else per_keypoint)
    return converted, used


def convert_state_dict(
    official: Dict[str, Tensor], target: Dict[str, Tensor],
    part_groups: Sequence[Sequence[int]]
) -> Tuple['OrderedDict[str, Tensor]', List[str], List[str]]:
    """Map an official state dict onto a model's.

    Args:
        official: The official state dict.
        target: The state dict of the model built from our config (its keys,
            shapes and constant buffers).
        part_groups: The config's part division (the official order is
            scheme (c): face, shoulders, left/right elbow + wrist, hips,
            left/right knee + ankle).

    Returns:
        The converted state dict (in ``target``'s key order), the official
        keys dropped as unused, and the target buffers taken from the model
        because the official one has no counterpart (the flow prior's
        constant ``loc`` / ``cov``).

    Raises:
        ValueError: Listing every official key that maps nowhere, every
            converted key the model lacks, every model key left unfilled and
            every shape that differs.
    """
    converted, used = _gather_parts(official, part_groups)
    dropped, unmapped = [], []
    for key, value in official.items():
        if key in used:
            continue
        if any(re.match(pattern, key) for pattern in UNUSED):
            dropped.append(key)
            continue
        for pattern, replacement in RENAMES:
            match = re.match(pattern, key)
            if match:
                if replacement == 'LATERAL':  # its index shifts by one
                    new = f'neck.lateral_convs.{int(match.group(1)) - 1}.conv.'
                else:
                    new = match.expand(replacement)
                converted[new + key[match.end():]] = value
                break
        else:
            unmapped.append(key)
    filled = [
        k for k in target
        if k not in converted and k.startswith('head.criterion.')
        and k.rsplit('.', 1)[-1] in ('loc', 'cov')
    ]
    missing = [k for k in target if k not in converted and k not in filled]
    unexpected = [k for k in converted if k not in target]
    shapes = [
        f'{k}: official {tuple(v.shape)}, model {tuple(target[k].shape)}'
        for k, v in converted.items()
        if k in target and v.shape != target[k].shape
    ]
    problems = []
    for title, keys in (('official keys that map to nothing', unmapped),
                        ('converted keys the model does not have', unexpected),
                        ('model keys the checkpoint does not fill',
                         missing), ('shapes that differ', shapes)):
        if keys:
            listed = '\n  '.join(keys[:40])
            more = f'\n  ... and {len(keys) - 40} more' if len(keys) > 40 \
                else ''
            problems.append(f'{len(keys)} {title}:\n  {listed}{more}')
    if problems:
        hint = ''
        if any('instance_conv' in k for k in unexpected):
            hint = ('\nThe checkpoint is the full version (it has the Q_I '
                    'update): use a config with keypoint_decoder.'
                    'update_instance_query=True.')
        elif any('instance_conv' in k for k in missing):
            hint = ('\nThe checkpoint is the light version: use a config '
                    'with keypoint_decoder.update_instance_query=False.')
        raise ValueError('the checkpoint does not fit the config\'s model; ' +
                         '\n'.join(problems) + hint)
    result = OrderedDict(
        (k, converted[k] if k in converted else target[k].clone())
        for k in target)
    return result, dropped, filled
