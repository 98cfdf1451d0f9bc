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
