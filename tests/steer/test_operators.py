import pytest
import torch

from xsteer.errors import DimensionMismatchError, NonFiniteError
from xsteer.steer import (
    additive,
    clamp_along,
    harm_score,
    masked_mean,
    project_out,
    project_out_subspace,
)


def test_additive_is_exact_and_respects_mask(gen):
    E = torch.randn(2, 5, 4, generator=gen)
    d = torch.randn(4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = additive(E, d, 0.7, mask)
    assert torch.equal(out[0, 3:], E[0, 3:])  # padding untouched, bit for bit
    assert torch.allclose(out[0, :3], E[0, :3] + 0.7 * d)
    assert torch.equal(additive(E, d, 0.0), E)
    # mean pooling commutes with additive steering
    assert torch.allclose(masked_mean(out, mask), masked_mean(E, mask) + 0.7 * d, atol=1e-6)


def test_project_out_removes_component_and_is_idempotent(gen):
    E = torch.randn(3, 6, 8, generator=gen)
    d = torch.randn(8, generator=gen)
    out = project_out(E, d)
    assert torch.allclose(out @ (d / d.norm()), torch.zeros(3, 6), atol=1e-5)
    assert torch.allclose(project_out(out, d), out, atol=1e-6)
    c = torch.randn(8, generator=gen)
    out_c = project_out(E, d, center=c)
    assert torch.allclose((out_c - c) @ (d / d.norm()), torch.zeros(3, 6), atol=1e-5)


def test_subspace_projection_matches_sequential_for_orthogonal_directions(gen):
    E = torch.randn(4, 10, generator=gen)
    Q, _ = torch.linalg.qr(torch.randn(10, 3, generator=gen))
    D = Q.T
    seq = project_out(project_out(project_out(E, D[0]), D[1]), D[2])
    assert torch.allclose(project_out_subspace(E, D), seq, atol=1e-5)
    # dependent rows are handled (rank 2 subspace given as 3 rows)
    D2 = torch.stack([D[0], D[1], D[0] + D[1]])
    assert torch.allclose(project_out_subspace(E, D2), project_out(project_out(E, D[0]), D[1]),
                          atol=1e-5)


def test_clamp_moves_only_prompts_below_floor():
    d = torch.tensor([1.0, 0.0])
    E = torch.tensor([[-3.0, 1.0], [0.5, 2.0]])
    out = clamp_along(E, d, minimum=-1.0)
    assert out[0].tolist() == [-1.0, 1.0]
    assert torch.equal(out[1], E[1])


def test_harm_score_sign():
    d = torch.tensor([0.0, 2.0])  # unsafe -> safe along +y
    X = torch.tensor([[0.0, -1.0], [0.0, 1.0]])
    s = harm_score(X, d, torch.zeros(2))
    assert s.tolist() == [1.0, -1.0]  # the point on the unsafe side scores higher


def test_errors():
    with pytest.raises(DimensionMismatchError, match="direction has dim 3"):
        additive(torch.zeros(2, 4), torch.zeros(3), 1.0)
    with pytest.raises(NonFiniteError):
        project_out(torch.zeros(2, 4), torch.zeros(4))


def test_additive_steering_of_every_token_cannot_reroute_cross_attention():
    """Why additive steering of all tokens acts as a bias (docs/proving_ground.md): adding one
    vector to every key shifts each query's logits by a constant, so the attention weights are
    unchanged and the output moves by the same W_o W_v (s d) at every position. Projection, whose
    change depends on each token, does reroute."""
    from diffusers.models.attention_processor import Attention

    from xsteer.steer import additive, project_out

    torch.manual_seed(0)
    attn = Attention(query_dim=16, cross_attention_dim=8, heads=2, dim_head=8)
    x, E, d = torch.randn(1, 10, 16), torch.randn(1, 5, 8), torch.randn(8)

    def weights(states):
        q, k = attn.head_to_batch_dim(attn.to_q(x)), attn.head_to_batch_dim(attn.to_k(states))
        return attn.get_attention_scores(q, k)

    with torch.no_grad():
        pushed = additive(E, d, 3.0)
        assert torch.allclose(weights(pushed), weights(E), atol=1e-6)
        bias = attn.to_out[0].weight @ (attn.to_v.weight @ (3.0 * d))
        shift = attn(x, encoder_hidden_states=pushed) - attn(x, encoder_hidden_states=E)
        assert torch.allclose(shift, bias.expand_as(shift), atol=1e-5)
        assert not torch.allclose(weights(project_out(E, d)), weights(E), atol=1e-3)
