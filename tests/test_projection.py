"""Variable projection: the row-wise least-squares W is exact, on dense and sparse supports."""

import numpy as np
import pytest
import torch

from gnnlab.config import load_config
from gnnlab.errors import ConfigError
from gnnlab.training.projection import solve_weights


def problem(n: int, candidates: np.ndarray, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = np.tanh(rng.normal(size=(400, n)))
    true_w = rng.normal(size=(n, n)) * candidates
    residual = features @ true_w.T
    return torch.tensor(features), torch.tensor(residual), true_w


def row_by_row(features: np.ndarray, residual: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The reference: one numpy least-squares fit per row over its candidate sources."""
    out = np.zeros((features.shape[1],) * 2)
    for i, row in enumerate(candidates):
        out[i, row] = np.linalg.lstsq(features[:, row], residual[:, i], rcond=None)[0]
    return out


def test_a_dense_support_without_self_edges_is_solved_exactly_by_the_shared_inverse():
    candidates = ~np.eye(12, dtype=bool)
    features, residual, true_w = problem(12, candidates)
    solved = solve_weights(features, residual, torch.tensor(candidates), ridge=0.0).numpy()
    assert np.abs(solved - true_w).max() < 1e-9
    assert np.abs(np.diag(solved)).max() == 0.0


def test_a_sparse_support_matches_a_least_squares_fit_per_row():
    rng = np.random.default_rng(1)
    candidates = (rng.random((12, 12)) < 0.4) & ~np.eye(12, dtype=bool)
    features, _, _ = problem(12, candidates)
    residual = torch.tensor(rng.normal(size=(400, 12)))  # not in the span: a genuine least-squares fit
    solved = solve_weights(features, residual, torch.tensor(candidates), ridge=0.0).numpy()
    reference = row_by_row(features.numpy(), residual.numpy(), candidates)
    assert np.abs(solved - reference).max() < 1e-9
    assert (solved[~candidates] == 0).all()


def test_the_dense_shortcut_agrees_with_the_masked_systems():
    candidates = ~np.eye(10, dtype=bool)
    features, _, _ = problem(10, candidates)
    residual = torch.tensor(np.random.default_rng(2).normal(size=(400, 10)))
    dense = solve_weights(features, residual, torch.tensor(candidates), ridge=1e-3)
    almost = candidates.copy()
    almost[0, 1] = False  # any other support takes the per-row path
    masked = solve_weights(features, residual, torch.tensor(almost), ridge=1e-3)
    assert torch.allclose(dense[1:], masked[1:], atol=1e-10)


def test_l1_on_w_needs_the_gradient_solver():
    with pytest.raises(ConfigError, match="coeff_W_L1 needs W_solver: gradient"):
        load_config(None, ["system=signal", "training.coeff_W_L1=0.01"])
    config = load_config(None, ["system=signal", "training.coeff_W_L1=0.01", "training.W_solver=gradient"])
    assert config.training.W_solver == "gradient"


@pytest.mark.parametrize("density", [1.0, 0.5])
def test_a_subset_of_target_rows_gives_those_rows_of_the_full_solve(density):
    rng = np.random.default_rng(3)
    candidates = (rng.random((12, 12)) < density) & ~np.eye(12, dtype=bool)
    features, _, _ = problem(12, candidates)
    residual = torch.tensor(rng.normal(size=(400, 12)))
    full = solve_weights(features, residual, torch.tensor(candidates), ridge=1e-3)
    rows = torch.tensor([1, 4, 5, 11])
    part = solve_weights(features, residual[:, rows], torch.tensor(candidates), ridge=1e-3, rows=rows)
    assert part.shape == (4, 12)
    assert torch.allclose(part, full[rows], atol=1e-10)


def test_float32_features_of_an_ill_conditioned_gram_are_solved_in_float64():
    # features of condition 1e4 (the Gram: 1e8, beyond float32), like chaotic activity at N = 1000
    rng = np.random.default_rng(4)
    n = 40
    left = np.linalg.qr(rng.normal(size=(400, n)))[0]
    right = np.linalg.qr(rng.normal(size=(n, n)))[0]
    features = torch.tensor(left * np.logspace(0, -4, n) @ right.T * 20.0, dtype=torch.float32)
    true_w = rng.normal(size=(n, n)) * ~np.eye(n, dtype=bool)
    residual = (features.double() @ torch.tensor(true_w).T).float()
    solved = solve_weights(features, residual, torch.tensor(~np.eye(n, dtype=bool)), ridge=0.0)
    assert solved.dtype == torch.float64
    assert np.abs(solved.numpy() - true_w).max() < 1e-3 * np.abs(true_w).max()  # float32 Gram: 17x
