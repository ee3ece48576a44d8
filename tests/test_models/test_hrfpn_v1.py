import pytest
import torch
import torch.nn.functional as F

from querypose_mm.models.necks import HRFPNv1


def test_levels_pool_the_previous_level_and_add_a_lateral():
    torch.manual_seed(0)
    neck = HRFPNv1([4, 8, 16, 32], 8).eval()
    neck.init_weights()
    inputs = [
        torch.randn(2, c, 32 // 2**i, 40 // 2**i)
        for i, c in enumerate([4, 8, 16, 32])
    ]
    outs = neck(inputs)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 32 // 2**i, 40 // 2**i)
                                              for i in range(4)]
    upsampled = [inputs[0]] + [
        F.interpolate(x, scale_factor=2**i, mode='bilinear')
        for i, x in enumerate(inputs[1:], 1)
    ]
    level = neck.reduction_conv.conv(torch.cat(upsampled, 1))
    torch.testing.assert_close(outs[0], neck.fpn_convs[0].conv(level))
    for i in (1, 2, 3):
        level = F.avg_pool2d(level, 2) + neck.lateral_convs[i - 1].conv(
            inputs[i])
        torch.testing.assert_close(outs[i], neck.fpn_convs[i].conv(level))


def test_wrong_branch_count_is_a_clear_error():
    neck = HRFPNv1([4, 8, 16, 32], 8)
    with pytest.raises(ValueError, match='expects 4 branches'):
        neck([torch.randn(1, 4, 8, 8)])
