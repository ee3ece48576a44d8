import math

import pytest
import torch
import torch.nn as nn

from mmpose.registry import MODELS
from querypose_mm.models.layers import PartwiseLinear
from querypose_mm.models.utils import (COCO_PARTS_5, COCO_PARTS_7,
                                       COCO_PARTS_13, COCO_PARTS_17,
                                       check_part_groups)
from querypose_mm.testing import get_quickstart_head_cfg

# Fig. 4 of the paper on COCO-17 keypoints.
SCHEMES = {
    'a17': COCO_PARTS_17,
    'b13': COCO_PARTS_13,
    'c7': COCO_PARTS_7,
    'd5': COCO_PARTS_5,
}


def _stage(**kwargs):
    """The quick-start keypoint decoder at 32 channels, 16-dim parts and
    a 14x14 RoI (the head fills these in)."""
    cfg = get_quickstart_head_cfg()['keypoint_decoder']
    cfg.update(
        part_groups=COCO_PARTS_7,
        num_keypoints=17,
        in_channels=32,
        part_dim=16,
        roi_size=14,
        conv_channels=32)
    cfg.update(kwargs)
    stage = MODELS.build(cfg)
    stage.init_weights()
    return stage


@pytest.mark.parametrize('scheme', sorted(SCHEMES))
def test_part_schemes_of_table_2d(scheme):
    torch.manual_seed(0)
    parts = SCHEMES[scheme]
    stage = _stage(part_groups=parts)
    n = 3
    out = stage(
        torch.randn(n, 32, 14, 14), torch.randn(n, 32),
        torch.randn(n, len(parts), 16))
    assert out['coords'].shape == (n, 17, 2)
    assert out['sigma_logits'].shape == (n, 17, 2)
    assert out['part_queries'].shape == (n, len(parts), 16)
    assert out['instance_queries'].shape == (n, 32)
    assert out['attention'].shape == (n, len(parts), 28, 28)


def test_partwise_linear_equals_one_linear_per_part():
    torch.manual_seed(0)
    parts = [[0, 3], [1], [2, 4, 5]]
    layer = PartwiseLinear(parts, part_dim=6, normalize_input=True)
    queries = torch.randn(4, 3, 6)
    out = layer(queries)
    normed = queries / queries.norm(dim=-1, keepdim=True)
    for p, group in enumerate(parts):
        # the separate Linear(d_p -> 2|part|) of part p
        linear = nn.Linear(6, 2 * len(group))
        linear.weight.data = layer.weight[group].permute(0, 2, 1).reshape(
            2 * len(group), 6)
        linear.bias.data = layer.bias[group].reshape(-1)
        expected = linear(normed[:, p]).view(4, len(group), 2)
        torch.testing.assert_close(out[:, group], expected)


def test_light_version_leaves_the_instance_query_alone():
    torch.manual_seed(0)
    stage = _stage(update_instance_query=False)
    q_i = torch.randn(2, 32)
    out = stage(torch.randn(2, 32, 14, 14), q_i, torch.randn(2, 7, 16))
    assert out['instance_queries'] is q_i
    assert not any('instance_conv' in n for n, _ in stage.named_parameters())
    full = _stage(update_instance_query=True)
    out = full(torch.randn(2, 32, 14, 14), q_i, torch.randn(2, 7, 16))
    assert not torch.allclose(out['instance_queries'], q_i)


@pytest.mark.parametrize('iteration', ['sim', 'sum', 'concat', 'none'])
def test_iteration_modes_and_part_dims(iteration):
    torch.manual_seed(0)
    for part_dim in (8, 16):
        stage = _stage(iteration=iteration, part_dim=part_dim)
        out = stage(
            torch.randn(2, 32, 14, 14), torch.randn(2, 32),
            torch.randn(2, 7, part_dim))
        assert out['part_queries'].shape == (2, 7, part_dim)
        assert torch.isfinite(out['coords']).all()


def test_the_conv_stack_of_the_paper_model_and_its_count():
    stage = _stage(in_channels=256, num_convs=6, conv_channels=512)
    convs = [m for m in stage.conv_stack if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels)
            for c in convs] == [(256, 512)] + [(512, 512)] * 4 + [(512, 256)]
    # 11.8 M per stage (DESIGN §3)
    assert sum(p.numel() for p in stage.conv_stack.parameters()) == (
        256 * 512 * 9 + 512) + 4 * (512 * 512 * 9 + 512) + (512 * 256 * 9 +
                                                            256) == 11799296


def test_spegm_and_the_instance_update_read_the_conv_stack_output():
    """As the official code: one conv stack feeds the Q_I update's
    DynamicConv and SPEGM."""
    torch.manual_seed(0)
    stage = _stage().eval()
    rois = torch.randn(2, 32, 14, 14)
    seen = {}
    stage.spegm.register_forward_pre_hook(
        lambda module, args: seen.update(spegm=args[0]))
    stage.instance_conv.register_forward_pre_hook(
        lambda module, args: seen.update(instance_conv=args[1]))
    stage(rois, torch.randn(2, 32), torch.randn(2, 7, 16))
    expected = stage.conv_stack(rois)
    torch.testing.assert_close(seen['spegm'], expected)
    torch.testing.assert_close(seen['instance_conv'], expected)


@pytest.mark.parametrize('parts,message', [
    ([[0, 1], [2]], r'missing \[3\]'),
    ([[0, 1], [1, 2, 3]], r'repeated \[1\]'),
    ([[0, 1], [2, 3, 4]], r'out of range \[4\]'),
    ([[0, 1, 2, 3], []], 'empty part'),
])
def test_bad_part_division_is_a_clear_error(parts, message):
    with pytest.raises(ValueError, match=message):
        check_part_groups(parts, num_keypoints=4)
    with pytest.raises(ValueError, match=message):
        _stage(part_groups=parts, num_keypoints=4)


def test_xavier_reinit_draws_each_official_layer_with_its_fans():
    """The official Decoder._reset_parameters: every >= 2-D weight xavier-
    uniform (gain 1); a weight holding one official linear per part is drawn
    part by part with that linear's fans."""
    cfg = dict(
        get_quickstart_head_cfg()['keypoint_decoder'],
        part_groups=[[0, 1, 2, 3, 4], [5, 6], [7, 9], [8, 10], [11, 12],
                     [13, 15], [14, 16]],
        num_keypoints=17,
        in_channels=64,
        part_dim=32,
        roi_size=7,
        xavier_reinit=True)
    torch.manual_seed(0)
    decoder = MODELS.build(cfg)
    decoder.init_weights()

    def bound(fan_in, fan_out):
        return math.sqrt(6.0 / (fan_in + fan_out))

    def assert_uniform(weight, limit):
        assert weight.abs().max().item() <= limit
        # uniform on [-b, b]: std b / sqrt(3), and it reaches near b
        assert weight.abs().max().item() > 0.9 * limit
        assert abs(weight.std().item() - limit / math.sqrt(3)) < 0.2 * limit

    for chunk in decoder.instance_to_part.weight.detach().split(32):
        assert_uniform(chunk, bound(64, 32))
    for head in (decoder.coord_head, decoder.sigma_head):
        for group in decoder.part_groups:
            # the official fc_coord / fc_sigma of this part: 2|p| x d_p
            assert_uniform(head.weight.detach()[group],
                           bound(32, 2 * len(group)))
    conv = decoder.conv_stack[0].weight.detach()
    assert_uniform(conv, bound(conv.size(1) * 9, conv.size(0) * 9))
    attn = decoder.part_attention.in_proj_weight.detach()
    assert_uniform(attn, bound(32, 96))
