"""Gauss-Newton preconditioning of the L-BFGS refinement: the curvature estimate is the loss's, and the
rescaled steps solve what unscaled ones crawl along."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from gnnlab.config import MetabolismSimulation, load_config
from gnnlab.models import build_model
from gnnlab.systems.metabolism.simulator import MetabolismSystem
from gnnlab.training import FrameTensors, _frame_residuals, _gauss_newton_diagonal, _lbfgs, loss_weights

A = torch.logspace(0, 1.5, 40)  # curvatures A^2 span three decades (within the damping's reach)


def _refine_badly_scaled_least_squares(
    preconditioner: str, iterations: int, every: int, curvature: Callable[[list[Tensor]], list[Tensor]]
) -> tuple[Tensor, int]:
    """min sum (A * x - A)^2 over x in R^40 from x = 0, whose answer is x = 1 everywhere. Returns x after the
    refinement and the iterations it ran."""
    x = nn.Parameter(torch.zeros(40))

    def loss_and_backward() -> Tensor:
        loss = ((A * x - A) ** 2).sum()
        loss.backward()
        return loss.detach()

    settings = load_config(
        None,
        [
            f"training.lbfgs_iterations={iterations}",
            f"training.lbfgs_preconditioner={preconditioner}",
            f"training.lbfgs_curvature_every={every}",
        ],
    ).training
    ran = _lbfgs([x], settings, {"lbfgs_loss": []}, False, loss_and_backward, curvature)
    return x.detach(), ran


def _solve_badly_scaled_least_squares(preconditioner: str, iterations: int) -> Tensor:
    """|x - 1| after the refinement with the exact curvature, whose first 2 iterations are unscaled when
    preconditioned."""
    x, _ = _refine_badly_scaled_least_squares(preconditioner, iterations, 2, lambda params: [A**2])
    return (x - 1.0).abs()


def test_gauss_newton_rescaling_solves_curvatures_spread_over_three_decades_where_plain_lbfgs_crawls():
    assert _solve_badly_scaled_least_squares("gauss_newton", iterations=10).max() < 1e-3
    assert _solve_badly_scaled_least_squares("none", iterations=10).max() > 0.1


def test_curvature_is_read_after_the_unscaled_run_then_after_runs_of_doubling_length():
    """N = 1 unscaled iteration, then rescaled runs of 1, 2 and 4: three readings in 8 iterations. (A unit
    diagonal leaves the three decades unscaled, so no run ends early by converging.)"""
    read_at: list[Tensor] = []

    def curvature(params: list[Tensor]) -> list[Tensor]:
        read_at.append(params[0].detach().clone())
        return [torch.ones(40)]

    _, ran = _refine_badly_scaled_least_squares("gauss_newton", 8, 1, curvature)
    assert ran == 8
    assert len(read_at) == 3
    assert read_at[0].abs().max() > 0  # not where the refinement started


class _VectorField(nn.Module):
    """The model's derivative as a forward pass, so torch.func can call it with other parameter values."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, states: Tensor, inputs: Tensor) -> Tensor:
        return self.model.derivative(states, inputs)


def test_the_probed_gauss_newton_diagonal_of_the_rate_constants_matches_the_exact_one():
    simulation = MetabolismSimulation(n_metabolites=20, n_reactions=30, n_frames=400, seed=5)
    observations, _ = MetabolismSystem().simulate(simulation)
    config = load_config(None, ["simulation.n_metabolites=20", "simulation.n_reactions=30"])
    model = build_model(config, observations)
    frames = FrameTensors.from_frames(observations.frames("train"), torch.device("cpu"))
    weights = loss_weights(frames, "per_node")
    with torch.no_grad():
        model.log_k.copy_(torch.linspace(-2.0, -1.0, 30))

    curvature = _gauss_newton_diagonal(lambda: _frame_residuals(model, frames, weights), seed=0)
    probed = curvature([model.log_k])[0]

    field = _VectorField(model)

    def residuals(log_k: Tensor) -> Tensor:
        derivative = torch.func.functional_call(field, {"model.log_k": log_k}, (frames.states, frames.inputs))
        return (derivative * torch.sqrt(weights * frames.mask / frames.mask.sum())).flatten()

    jacobian = torch.autograd.functional.jacobian(residuals, model.log_k.detach().clone())
    exact = (jacobian**2).sum(0)
    ratio = (probed / exact).numpy()
    assert float(exact.max() / exact.min()) > 100.0  # the spread the preconditioner exists for
    assert np.median(ratio) == pytest.approx(1.0, abs=0.15)
    assert 0.3 < ratio.min() and ratio.max() < 2.5
