import torch

from querypose_mm.models.layers import SpatialPartEmbedding


def test_shapes_and_attention_sums_to_one_per_part():
    torch.manual_seed(0)
    spegm = SpatialPartEmbedding(
        num_parts=7, in_channels=32, part_dim=16, num_convs=2,
        conv_channels=48)
    spegm.init_weights()
    rois = torch.randn(5, 32, 14, 14)
    embeddings, attention = spegm(rois)
    assert embeddings.shape == (5, 7, 16)
    assert attention.shape == (5, 7, 28, 28)
    assert (attention >= 0).all()
    torch.testing.assert_close(
        attention.sum(dim=(2, 3)), torch.ones(5, 7), rtol=0, atol=1e-5)


def test_embedding_is_projection_of_attention_weighted_features():
    torch.manual_seed(0)
    spegm = SpatialPartEmbedding(num_parts=3, in_channels=8, part_dim=4,
                                 num_convs=1, conv_channels=8).eval()
    rois = torch.randn(2, 8, 14, 14)
    embeddings, attention = spegm(rois)
    feats = spegm.deconv(spegm.conv_stack(rois))  # (2, 8, 28, 28)
    # E_P[n, m] = Linear(sum_xy A[n, m, y, x] * F[n, :, y, x])
    pooled = torch.einsum('nmyx,ncyx->nmc', attention, feats)
    torch.testing.assert_close(embeddings, spegm.embed(pooled))


def test_spegm_proper_has_the_papers_parameter_count():
    spegm = SpatialPartEmbedding(num_parts=7, in_channels=256, part_dim=128)
    proper = spegm.spegm_proper_parameters()
    # deconv 256*256*4*4 + BN 2*256 + attention 256*7*9+7 + linear 256*128+128
    assert proper == 1048576 + 512 + 16135 + 32896
    assert abs(proper - 1.1e6) / 1.1e6 < 0.05
    # the 6-conv stack of the baseline, 256->512->...->512->256
    stack = sum(p.numel() for p in spegm.conv_stack.parameters())
    assert stack == (256 * 512 * 9 + 512) + 4 * (512 * 512 * 9 + 512) + (
        512 * 256 * 9 + 256)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    spegm = SpatialPartEmbedding(num_parts=2, in_channels=8, part_dim=4,
                                 num_convs=1, conv_channels=8)
    embeddings, _ = spegm(torch.randn(3, 8, 14, 14))
    embeddings.pow(2).sum().backward()
    for name, p in spegm.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
