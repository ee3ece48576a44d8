"""mmcv's compiled RoIAlign on the CPU against values computed by hand."""
import torch
from mmcv.ops import RoIAlign


def _feature(fn):
    ys, xs = torch.meshgrid(torch.arange(4.), torch.arange(4.), indexing='ij')
    return fn(xs, ys)[None, None]


def test_aligned_average_of_samples_of_a_linear_map():
    # f(x, y) = x + 4y is reproduced exactly by bilinear interpolation, so
    # each bin is the mean of f at its sampling points.
    feat = _feature(lambda x, y: x + 4 * y)
    # aligned=True subtracts half a pixel: box (0.5, 0.5)-(2.5, 2.5) covers
    # pixel centres [0, 2] x [0, 2]; each of the 2x2 bins is 1x1 and is
    # sampled at its quarter points (sampling_ratio=2).
    rois = torch.tensor([[0., 0.5, 0.5, 2.5, 2.5]])
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2,
                   aligned=True)(feat, rois)
    # bin (row i, col j): mean x = j + 0.5, mean y = i + 0.5
    expected = torch.tensor([[2.5, 3.5], [6.5, 7.5]])
    torch.testing.assert_close(out[0, 0], expected)


def test_bilinear_sample_of_a_nonlinear_map():
    # f(x, y) = x^2 + 10y. One bin, one sample at the box centre.
    feat = _feature(lambda x, y: x**2 + 10 * y)
    # aligned=False: box (1, 1)-(2, 3), centre (1.5, 2.0). Bilinear between
    # f(1, 2) = 21 and f(2, 2) = 24 gives 22.5 (not f(1.5, 2) = 22.25).
    rois = torch.tensor([[0., 1., 1., 2., 3.]])
    out = RoIAlign((1, 1), spatial_scale=1.0, sampling_ratio=1,
                   aligned=False)(feat, rois)
    assert out.shape == (1, 1, 1, 1)
    assert abs(out.item() - 22.5) < 1e-6


def test_spatial_scale_and_batch_index():
    # Two images; the RoI points at the second one, given in input pixels of
    # a stride-2 map (spatial_scale=0.5).
    feat = torch.cat([
        _feature(lambda x, y: torch.zeros_like(x)),
        _feature(lambda x, y: x + 4 * y)
    ])
    rois = torch.tensor([[1., 1., 1., 5.,
                          5.]])  # feature box (0.5,0.5)-(2.5,2.5)
    out = RoIAlign((1, 1), spatial_scale=0.5, sampling_ratio=2,
                   aligned=True)(feat, rois)
    assert abs(out.item() - 5.0) < 1e-6  # mean x = 1, mean y = 1


def test_gradient_spreads_over_the_sampled_pixels():
    feat = torch.zeros(1, 1, 4, 4, requires_grad=True)
    rois = torch.tensor([[0., 1., 1., 2., 3.]])
    RoIAlign((1, 1), 1.0, 1, aligned=False)(feat, rois).sum().backward()
    grad = feat.grad[0, 0]
    # the single sample (1.5, 2.0) weighs pixels (x=1, y=2) and (x=2, y=2)
    assert grad[2, 1].item() == 0.5 and grad[2, 2].item() == 0.5
    assert grad.sum().item() == 1.0
