"""Training objectives for noisy data: the noise estimate that chooses one, Savitzky-Golay targets, and
multiple shooting (windows, the loss, fitted starts), each on data whose answer is known."""

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import gnnlab
from gnnlab.config import MetabolismSimulation, load_config
from gnnlab.errors import ConfigError
from gnnlab.models import DynamicsModel
from gnnlab.systems.metabolism.identifiability import noise_floor, practical_identifiability
from gnnlab.systems.metabolism.simulator import MetabolismSystem
from gnnlab.training.trajectory import (
    Shooting,
    Windows,
    below_floor_mask,
    choose_objective,
    error_model,
    measurement_noise,
    noise_to_signal,
    rate_prior_weight,
    smoothed_frames,
)

SMALL = {"n_metabolites": 20, "n_reactions": 30, "n_frames": 800, "n_runs": 2, "n_validation_runs": 1}


def readings(**overrides) -> np.ndarray:
    observations, _ = MetabolismSystem().simulate(MetabolismSimulation(**{**SMALL, **overrides}))
    return observations.trajectories("train")[0]


def test_the_objective_follows_the_noise_derivatives_when_clean_smoothing_when_weak_shooting_when_strong():
    clean, weak, strong = (readings(seed=3, measurement_noise_level=level) for level in (0.0, 0.005, 0.05))
    assert (
        noise_to_signal(clean, 0.1) < 0.02 < noise_to_signal(weak, 0.1) < 0.1 < noise_to_signal(strong, 0.1)
    )
    assert choose_objective(clean, 0.1) == "derivative"
    assert choose_objective(weak, 0.1) == "smoothed_derivative"
    assert choose_objective(strong, 0.1) == "trajectory"


def test_weak_relative_noise_is_fitted_by_shooting_on_the_log_scale():
    weak = readings(seed=3, measurement_noise_type="relative", measurement_noise_level=0.002)
    assert noise_to_signal(weak, 0.1) < 0.1
    assert choose_objective(weak, 0.1) == "trajectory"


def test_process_noise_alone_keeps_derivative_regression():
    # a diffusion's increments are independent of the state they start from: forward differences stay
    # unbiased, and the stride test tells them from measurement noise
    shaken = readings(seed=3, noise_model_level=0.05)
    assert (
        measurement_noise(shaken).max()
        < 0.2 * measurement_noise(readings(seed=3, measurement_noise_level=0.05)).min()
    )
    assert choose_objective(shaken, 0.1) == "derivative"


def test_noise_proportional_to_the_reading_is_told_apart_from_absolute_noise():
    relative = readings(seed=3, measurement_noise_type="relative", measurement_noise_level=0.05)
    assert error_model(relative) == "relative"
    assert error_model(readings(seed=3, measurement_noise_level=0.05)) == "absolute"
    assert error_model(readings(seed=3, noise_model_level=0.05)) == "absolute"


def test_savitzky_golay_targets_recover_the_derivative_of_a_noisy_sine():
    t = np.arange(400) * 0.05
    rng = np.random.default_rng(0)
    series = (2 + np.sin(t))[None, :, None] + 0.01 * rng.standard_normal((1, 400, 1))
    frames = smoothed_frames(series, np.zeros_like(series), 0.05, window=21)
    assert frames.targets.shape == (400 - 2 * 21, 1)  # a window left out at each end
    error = frames.targets[:, 0] - np.cos(t)[21:-21]
    naive = np.diff(series[0, :, 0]) / 0.05 - np.cos(t[:-1])
    assert np.abs(error).max() < 0.1 < np.abs(naive).max()


def test_windows_cut_each_run_into_non_overlapping_spans_sharing_their_end_and_start():
    states = np.arange(2 * 11 * 3, dtype=float).reshape(2, 11, 3)
    windows = Windows.cut(states, np.zeros_like(states), 5, torch.device("cpu"))
    assert windows.readings.shape == (4, 6, 3) and windows.inputs.shape == (4, 5, 3)
    np.testing.assert_array_equal(windows.readings[1, 0].numpy(), states[0, 5])
    np.testing.assert_array_equal(windows.readings[0, -1].numpy(), windows.readings[1, 0].numpy())
    np.testing.assert_array_equal(windows.readings[2, 0].numpy(), states[1, 0])


def test_a_window_longer_than_a_run_is_a_config_error():
    with pytest.raises(ConfigError, match="training.window = 20"):
        Windows.cut(np.ones((1, 10, 2)), np.zeros((1, 10, 2)), 20, torch.device("cpu"))


class Decay(DynamicsModel):
    """dx/dt = -rate * x: the simplest vector field a shooting loss can be checked against."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = nn.Parameter(torch.tensor(rate))

    def derivative(self, states: Tensor, inputs: Tensor) -> Tensor:
        return -self.rate * states

    def param_groups(self, training):
        return [{"name": "rate", "params": [self.rate], "lr": 0.1}]


def decay_data(noise: float = 0.0) -> np.ndarray:
    x = 5.0 * 0.97 ** np.arange(41)  # Euler with rate 0.3 and delta_t 0.1: x <- x (1 - 0.03)
    rng = np.random.default_rng(1)
    return (x + noise * rng.standard_normal(41))[None, :, None]


def test_shooting_loss_vanishes_for_the_true_field_and_not_for_a_wrong_one():
    data = decay_data()
    windows = Windows.cut(data, np.zeros_like(data), 10, torch.device("cpu"))
    shooting = Shooting(windows, 0.1, 1, fit_starts=False)
    with torch.no_grad():
        assert float(shooting.loss(Decay(0.3), slice(None))) < 1e-10
        assert float(shooting.loss(Decay(0.2), slice(None))) > 1e-3


def test_the_shooting_residuals_square_to_the_shooting_loss_that_their_curvature_preconditions():
    data = decay_data(noise=0.05)
    windows = Windows.cut(data, np.zeros_like(data), 10, torch.device("cpu"))
    shooting = Shooting(windows, 0.1, 1, fit_starts=False, log_offset=0.01)
    with torch.no_grad():
        loss = float(shooting.loss(Decay(0.2), slice(None)))
        residuals = shooting.residuals(Decay(0.2), slice(None))
    assert loss > 1e-3
    assert float((residuals**2).sum()) == pytest.approx(loss, rel=1e-5)


def test_relative_errors_weigh_a_ten_per_cent_miss_alike_at_every_level():
    def loss_of_missing_by_ten_per_cent(level: float, log_offset: float | None) -> float:
        data = np.full((1, 2, 1), level)  # one node, one interval, constant
        windows = Windows.cut(data, np.zeros_like(data), 1, torch.device("cpu"))
        shooting = Shooting(windows, 0.1, 1, fit_starts=False, log_offset=log_offset)
        with torch.no_grad():
            shooting.starts.copy_(shooting.scale(torch.full((1, 1), 1.1 * level)))
            return float(shooting.loss(Decay(0.0), slice(None)))

    relative = [loss_of_missing_by_ten_per_cent(level, 1e-6) for level in (10.0, 0.1)]
    absolute = [loss_of_missing_by_ten_per_cent(level, None) for level in (10.0, 0.1)]
    assert relative == pytest.approx([math.log(1.1) ** 2] * 2, rel=1e-3)
    assert absolute == pytest.approx([1.0, 1e-4], rel=1e-3)


def test_the_rate_prior_is_as_wide_as_the_fitted_rate_constants_spread_and_weighs_like_one_reading_in_n():
    log_k = torch.tensor([-2.0, -1.5, -1.0, -1.4, -1.6])  # median -1.5, median absolute deviation 0.1
    tau = 1.4826 * 0.1
    assert rate_prior_weight(log_k, noise_var=0.0025, n_readings=1000) == pytest.approx(
        0.0025 / 1000 / tau**2
    )


def test_shooting_with_fitted_starts_recovers_a_rate_from_noisy_readings():
    data = decay_data(noise=0.05)
    windows = Windows.cut(data, np.zeros_like(data), 10, torch.device("cpu"))
    shooting = Shooting(windows, 0.1, 1, fit_starts=True)
    model = Decay(0.1)
    optimizer = torch.optim.LBFGS([model.rate, shooting.starts], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = shooting.loss(model, slice(None))
        loss.backward()
        return loss

    optimizer.step(closure)
    naive = -np.diff(data[0, :, 0]) / 0.1 / data[0, :-1, 0]  # per-step rate from forward differences
    assert abs(model.rate.item() - 0.3) < 0.03
    assert naive.std() > 0.1  # what a single difference would have made of the same readings


def test_a_run_records_which_objective_ran(tmp_path):
    config = load_config(
        None,
        [
            "simulation.n_metabolites=12",
            "simulation.n_reactions=16",
            "simulation.n_frames=200",
            "simulation.n_runs=2",
            "simulation.measurement_noise_type=relative",
            "simulation.measurement_noise_level=0.05",
            "training.data_augmentation_loop=2",
            "training.lbfgs_iterations=0",
        ],
    )
    metrics = gnnlab.run(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, plots=False)
    assert (config.training.objective, config.training.error_model) == ("auto", "auto")
    assert (metrics["objective"], metrics["error_model"]) == ("trajectory", "relative")


def test_noise_floor_reads_the_measurement_noise_of_a_smooth_series():
    t = np.arange(600) * 0.1
    rng = np.random.default_rng(2)
    clean = np.stack([3 + np.sin(t), 5 + np.cos(0.5 * t)], axis=-1)[None]
    for sigma in (0.01, 0.05):
        floor = noise_floor(clean + sigma * rng.standard_normal(clean.shape))
        np.testing.assert_allclose(floor, sigma, rtol=0.2)
    assert noise_floor(clean).max() < 1e-3


def test_targets_touched_by_a_reaction_consuming_a_pool_below_its_floor_are_masked():
    # reaction 0: A -> B; reaction 1: C -> D. A dips to zero in the middle of the series, C never does.
    stoichiometry = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])
    smooth = np.full((1, 50, 4), 2.0)
    smooth[0, 20:25, 0] = 0.0
    mask = below_floor_mask(smooth, 0.1, stoichiometry, window=5)
    assert mask[0, 20:25, :2].sum() == 0 and mask[0, 18, 0] == 0  # the dip, widened by the window
    assert mask[0, :, 2:].min() == 1  # C and D are untouched
    assert mask[0, :10].min() == 1 and mask[0, 40:].min() == 1


def test_practically_identifiable_reactions_need_substrates_above_the_detection_limit():
    rng = np.random.default_rng(0)
    t = np.arange(400) * 0.1
    clean = np.stack([4 + np.sin(t), 0.01 + 0.0 * t, 3 + np.cos(t)], axis=-1)[None]
    readings = np.maximum(clean + 0.02 * rng.standard_normal(clean.shape), 0.0)
    reactants = np.array([[1, 0], [0, 1], [0, 1]])  # reaction 0 consumes A; reaction 1 consumes B and C
    practical = practical_identifiability(readings, reactants, np.array([True, True]))
    assert practical.tolist() == [True, False]


def _refine(loss_of_x, start: float, iterations: int = 20) -> tuple[float, dict[str, list[float]]]:
    """Run the shared L-BFGS refinement on one scalar parameter; returns where it ends and its history."""
    from gnnlab.training import _lbfgs

    x = nn.Parameter(torch.tensor([start]))
    history: dict[str, list[float]] = {"lbfgs_loss": []}

    def loss_and_backward() -> Tensor:
        loss = loss_of_x(x)
        loss.backward()
        return loss.detach()

    settings = load_config(None, [f"training.lbfgs_iterations={iterations}"]).training
    _lbfgs([x], settings, history, False, loss_and_backward)
    return float(x.detach()), history


def test_lbfgs_refinement_moves_a_float32_loss_whose_gradient_is_tiny_against_its_value():
    # a fitted model's loss: a floor of 1e-5 with a shallow bowl, as the metabolism loss after Adam; an
    # unscaled first step (-g, |g| ~ 6e-9) changes it by less than float32 resolves near 1e-5
    end, history = _refine(lambda x: (1e-5 + 1e-9 * (x - 3.0) ** 2).sum(), start=0.0)
    assert end == pytest.approx(3.0, abs=1e-2)


def test_a_non_finite_lbfgs_trial_point_restores_the_best_point_instead_of_failing_the_run():
    def loss(x: Tensor) -> Tensor:  # undefined past 50, minimum at 100: the quasi-Newton step lands past 50
        return torch.where(x > 50.0, torch.full_like(x, float("nan")), (x - 100.0) ** 2).sum()

    end, history = _refine(loss, start=0.0)
    assert history["lbfgs_nonfinite"] == [len(history["lbfgs_loss"])]
    assert math.isfinite(end) and end <= 50.0
    assert (end - 100.0) ** 2 == pytest.approx(min(history["lbfgs_loss"]))


def test_a_non_finite_loss_at_the_start_of_lbfgs_is_a_divergence():
    from gnnlab.errors import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="L-BFGS evaluation 0"):
        _refine(lambda x: (x * float("nan")).sum(), start=1.0)
