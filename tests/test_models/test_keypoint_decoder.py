import pytest
import torch
import torch.nn as nn

from querypose_mm.models.layers import (COCO_PARTS_7, KeypointDecoderStage,
                                        PartwiseLinear, check_part_groups)

# Fig. 4 of the paper on COCO-17 keypoints.
SCHEMES = {
    'a17': [[k] for k in range(17)],
    'b13': [[0, 1, 2, 3, 4]] + [[k] for k in range(5, 17)],
    'c7': COCO_PARTS_7,
    'd5': [[0, 1, 2, 3, 4], [5, 7, 9], [6, 8, 10],
           [11, 13, 15], [12, 14, 16]],
}


def _stage(**kwargs):
    cfg = dict(
        in_channels=32,
        part_dim=16,
        num_heads=2,
        feedforward_channels=32,
        spegm=dict(num_convs=1, conv_channels=32),
        dynamic_conv_cfg=dict(feat_channels=8))
    cfg.update(kwargs)
    stage = KeypointDecoderStage(**cfg)
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
