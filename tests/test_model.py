"""The metabolism GNN computes the equation it claims, with the gauge fixed and every part trainable."""

import numpy as np
import pytest
import torch

from gnnlab.evaluation.metabolism import _substrate_errors
from gnnlab.models import build_model
from gnnlab.systems import get_system
from gnnlab.systems.metabolism.network import MassAction, Network


@pytest.fixture
def simulated(tiny_config):
    observations, truth = get_system("metabolism").simulate(tiny_config.simulation)
    return tiny_config, observations, truth


def _set_mass_action(model, log_k):
    """g = c^s exactly: H(ln c, s) = ln c (the linear part reads ln c with weight 1; the MLP outputs 0)."""
    with torch.no_grad():
        model.substrate.linear.weight.copy_(torch.tensor([[1.0]]))
        model.log_k.copy_(torch.as_tensor(log_k, dtype=torch.float32))


def test_with_mass_action_and_true_k_the_reaction_term_is_the_true_reaction_flux(simulated):
    config, observations, truth = simulated
    model = build_model(config, observations)
    _set_mass_action(model, truth.log_k)
    c = observations.concentrations[0, ::50].astype(np.float64)
    network = Network(observations.reactants, observations.reactants + observations.stoichiometry)
    expected = (MassAction(network).unit_rates(c) * 10.0**truth.log_k) @ observations.stoichiometry.T
    with torch.no_grad():
        got = model.reaction_term(torch.as_tensor(c, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-5)


def test_derivative_adds_node_term_reaction_term_and_known_input(simulated):
    config, observations, truth = simulated
    model = build_model(config, observations)
    c = torch.as_tensor(observations.concentrations[0, :4])
    u = torch.randn_like(c)
    with torch.no_grad():
        total = model.derivative(c, u)
        parts = model.node_term(c) + model.reaction_term(c) + u
    torch.testing.assert_close(total, parts)


def test_substrate_function_is_one_at_unit_concentration_whatever_its_parameters(simulated):
    config, observations, _ = simulated
    model = build_model(config, observations)
    with torch.no_grad():
        for p in model.substrate.parameters():
            p.normal_()
        log_g = model.substrate(torch.ones(3), torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(log_g, torch.zeros(3))


def test_every_parameter_receives_gradient_after_the_first_step(simulated):
    """Zero output layers start the MLPs as the zero function; one step later nothing is dead (the prior
    system zeroed every layer of MLP_node, and its slopes stayed exactly 0 for 136 runs)."""
    config, observations, _ = simulated
    model = build_model(config, observations)
    frames = observations.frames("train")
    c, y = torch.as_tensor(frames.states[:64]), torch.as_tensor(frames.targets[:64])
    optimizer = torch.optim.Adam(model.param_groups(config.training))
    for _ in range(2):
        optimizer.zero_grad()
        ((model.derivative(c, torch.zeros_like(c)) - y) ** 2).mean().backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} gets no gradient"


def test_parameter_groups_carry_the_configured_learning_rates(simulated):
    config, observations, _ = simulated
    groups = {g["name"]: g for g in build_model(config, observations).param_groups(config.training)}
    assert groups.keys() == {"k", "sub", "node", "embedding"}
    assert groups["k"]["lr"] == config.training.learning_rate_k
    assert groups["sub"]["lr"] == config.training.learning_rate_sub
    assert groups["node"]["lr"] == config.training.learning_rate_node
    assert groups["embedding"]["lr"] == config.training.learning_rate_embedding


def test_monotonicity_penalty_is_zero_for_mass_action_and_positive_for_a_decreasing_g(simulated):
    config, observations, truth = simulated
    training = config.training.model_copy(update={"coeff_MLP_sub_diff": 1.0})
    model = build_model(config, observations)
    c = torch.as_tensor(observations.concentrations[0, :8])
    _set_mass_action(model, truth.log_k)
    assert model.penalty(c, training).item() == 0.0
    with torch.no_grad():
        model.substrate.linear.weight.copy_(torch.tensor([[-1.0]]))  # g = c^-s decreases
    assert model.penalty(c, training).item() > 0.0


def _mixed(tiny_config):
    """A tiny network with random mass-balanced reactions, which bring order-2 substrates."""
    mixed = {"cycle_fraction": 0.5, "integrator": "lsoda", "n_frames": 20}
    config = tiny_config.model_copy(update={"simulation": tiny_config.simulation.model_copy(update=mixed)})
    observations, truth = get_system("metabolism").simulate(config.simulation)
    model = build_model(config, observations)
    assert torch.unique(model.slot_order).tolist() == [1.0, 2.0]
    return config, observations, truth, model


def test_monotonicity_penalty_reads_g_at_every_substrate_order_of_a_mixed_network(tiny_config):
    config, observations, truth, model = _mixed(tiny_config)
    training = config.training.model_copy(update={"coeff_MLP_sub_diff": 1.0})
    c = torch.as_tensor(observations.concentrations[0, :8])
    _set_mass_action(model, truth.log_k)
    assert model.penalty(c, training).item() == 0.0
    with torch.no_grad():
        model.substrate.linear.weight.copy_(torch.tensor([[-1.0]]))
    assert model.penalty(c, training).item() > 0.0


def test_substrate_error_per_order_is_zero_for_mass_action_and_one_decade_per_unit_of_slope_error(
    tiny_config,
):
    _, _, truth, model = _mixed(tiny_config)
    _set_mass_action(model, truth.log_k)
    exact = _substrate_errors(model)
    assert exact["MLP_sub_log10_rmse_s1"] == pytest.approx(0.0, abs=1e-6)
    assert exact["MLP_sub_log10_rmse_s2"] == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        model.substrate.linear.weight.copy_(torch.tensor([[1.1]]))  # g = c^(1.1 s): log10 error 0.1 s log10 c
    grid = np.log10(model.concentration_grid.numpy())
    off = _substrate_errors(model)
    for s in (1, 2):
        expected = np.sqrt(np.mean((0.1 * s * grid) ** 2))
        assert off[f"MLP_sub_log10_rmse_s{s}"] == pytest.approx(expected, rel=1e-4)


def test_node_l1_penalty_is_off_by_default_and_positive_when_set(simulated):
    config, observations, _ = simulated
    model = build_model(config, observations)
    with torch.no_grad():
        model.node[-1].bias.fill_(0.5)
    c = torch.as_tensor(observations.concentrations[0, :8])
    assert model.penalty(c, config.training).item() == 0.0
    training = config.training.model_copy(update={"coeff_MLP_node_L1": 2.0})
    assert model.penalty(c, training).item() == pytest.approx(2.0 * 0.5, rel=1e-5)


def test_raw_concentration_input_keeps_the_gauge(tiny_config):
    config = tiny_config.model_copy(
        update={"model": tiny_config.model.model_copy(update={"substrate_input": "concentration"})}
    )
    observations, _ = get_system("metabolism").simulate(config.simulation)
    model = build_model(config, observations)
    with torch.no_grad():
        for p in model.substrate.parameters():
            p.normal_()
        assert model.substrate(torch.ones(2), torch.tensor([1.0, 2.0])).abs().max() == 0.0
