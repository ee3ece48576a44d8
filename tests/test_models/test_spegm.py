import torch

from querypose_mm.models.layers import SpatialPartEmbedding


def test_shapes_and_attention_sums_to_one_per_part():
    torch.manual_seed(0)
    spegm = SpatialPartEmbedding(num_parts=7, in_channels=32, part_dim=16)
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
    spegm = SpatialPartEmbedding(num_parts=3, in_channels=8, part_dim=4).eval()
    rois = torch.randn(2, 8, 14, 14)
    embeddings, attention = spegm(rois)
    feats = spegm.deconv(rois)  # (2, 8, 28, 28)
    # E_P[n, m] = Linear(sum_xy A[n, m, y, x] * F[n, :, y, x])
    pooled = torch.einsum('nmyx,ncyx->nmc', attention, feats)
    torch.testing.assert_close(embeddings, spegm.embed(pooled))


def test_spegm_has_the_papers_parameter_count():
    spegm = SpatialPartEmbedding(num_parts=7, in_channels=256, part_dim=128)
    params = sum(p.numel() for p in spegm.parameters())
    # deconv 256*256*4*4 + BN 2*256 + attention 256*7*9+7 + linear 256*128+128
    assert params == 1048576 + 512 + 16135 + 32896 == 1098119  # paper: 1.1 M


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    spegm = SpatialPartEmbedding(num_parts=2, in_channels=8, part_dim=4)
    embeddings, _ = spegm(torch.randn(3, 8, 14, 14))
    embeddings.pow(2).sum().backward()
    for name, p in spegm.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
