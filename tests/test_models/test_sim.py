import pytest
import torch

from querypose_mm.models.layers import SelectiveIteration


def test_gates_are_in_unit_interval_and_fuse_by_eq3():
    torch.manual_seed(0)
    sim = SelectiveIteration(part_dim=16)
    queries = torch.randn(4, 7, 16) * 5
    embeddings = torch.randn(4, 7, 16) * 5
    gate_e, gate_q = sim.gates(queries, embeddings)
    assert gate_e.shape == gate_q.shape == (4, 7, 16)
    assert ((gate_e > 0) & (gate_e < 1)).all()
    assert ((gate_q > 0) & (gate_q < 1)).all()
    out = sim(queries, embeddings)
    assert torch.equal(out, gate_e * embeddings + gate_q * queries)


def test_gate_mlp_is_linear_layernorm_relu_linear():
    sim = SelectiveIteration(part_dim=128)
    first, norm, _, last = sim.gate
    assert first.in_features == 128 and first.out_features == 32
    assert first.bias is None
    assert isinstance(norm, torch.nn.LayerNorm)
    assert last.in_features == 32 and last.out_features == 256


def test_ablation_modes():
    torch.manual_seed(0)
    queries, embeddings = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    assert torch.equal(
        SelectiveIteration(8, 'sum')(queries, embeddings),
        queries + embeddings)
    assert torch.equal(
        SelectiveIteration(8, 'none')(queries, embeddings), embeddings)
    concat = SelectiveIteration(8, 'concat')
    torch.testing.assert_close(
        concat(queries, embeddings),
        concat.fuse(torch.cat([embeddings, queries], -1)))
    assert sum(p.numel()
               for p in SelectiveIteration(8, 'sum').parameters()) == 0


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="one of .*'sim'.*got 'gated'"):
        SelectiveIteration(8, 'gated')
