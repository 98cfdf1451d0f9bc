"""The signal model's gauge: its transfer function cannot absorb a rescaling or sign flip of W."""

import torch

from gnnlab.models.signal import SignalModel


def _model() -> SignalModel:
    torch.manual_seed(0)
    edges = torch.tensor([[0, 1, 2, 0], [1, 2, 0, 2]])
    model = SignalModel(edges, n_neurons=3)
    with torch.no_grad():
        model.W.copy_(torch.tensor([0.5, -1.0, 2.0, 0.3]))
    return model


def test_transfer_function_saturates_at_plus_and_minus_one():
    g = _model().g_phi(torch.tensor([[-1e3, 0.0, 1e3]]))
    assert g[0, 0].item() == -1.0 and g[0, 2].item() == 1.0


def test_recurrent_term_is_sparse_sum_of_weight_times_presynaptic_transfer():
    model = _model()
    u = torch.tensor([[0.3, -0.2, 0.7]])
    g = model.g_phi(u)[0]
    expected = torch.stack([2.0 * g[2], 0.5 * g[0], -1.0 * g[1] + 0.3 * g[0]])
    recurrent = model.derivative(u, torch.zeros_like(u)) - model.f_theta(u)
    torch.testing.assert_close(recurrent[0], expected)


def test_rescaling_W_changes_the_vector_field():
    model = _model()
    u = torch.randn(8, 3)
    before = model.derivative(u, torch.zeros_like(u))
    with torch.no_grad():
        model.W.mul_(2.0)
    assert (model.derivative(u, torch.zeros_like(u)) - before).abs().max() > 0.1


def _random_model(n: int, n_edges: int) -> SignalModel:
    torch.manual_seed(1)
    edges = torch.unique(torch.randint(0, n, (2, n_edges)), dim=1)
    model = SignalModel(edges, n_neurons=n)
    with torch.no_grad():
        model.W.copy_(torch.randn(edges.shape[1]))
    return model


def test_without_autograd_the_cached_adjacency_gives_the_same_field_and_follows_weight_updates():
    # dense support (a rollout of a chaotic network) and sparse support (the fly connectome) take
    # different cached forms; both must agree with the autograd path, before and after W changes in place
    for model in (_random_model(30, 2000), _random_model(300, 900)):
        u = torch.randn(5, model.embedding.shape[0])
        zero = torch.zeros_like(u)
        with torch.no_grad():
            cached = model.derivative(u, zero)
            model.W.mul_(-3.0)
            updated = model.derivative(u, zero)
        torch.testing.assert_close(updated, model.derivative(u, zero).detach())
        torch.testing.assert_close(
            updated - model.f_theta(u).detach(), -3.0 * (cached - model.f_theta(u).detach())
        )
