"""Metabolism integrators: each converges at its order, noise has its stated statistics, and a simulation that
blows up or is too stiff for its step stops loudly, caching nothing and recording the run as failed."""

import json

import numpy as np
import pytest

import gnnlab
from gnnlab.cli import main
from gnnlab.config import MetabolismSimulation, load_config
from gnnlab.data import dataset_dir
from gnnlab.errors import SimulationDiverged
from gnnlab.systems.metabolism.simulator import MetabolismSystem

SMALL = {"n_metabolites": 12, "n_reactions": 16, "n_runs": 2, "n_validation_runs": 1}
# fast random reactions of order up to 2: an explicit step of 0.1 overshoots on a third of its steps
STIFF = {**SMALL, "cycle_fraction": 0.0, "log_k_min": 0.0, "log_k_max": 1.0, "n_frames": 300}


def simulate(**overrides):
    return MetabolismSystem().simulate(MetabolismSimulation(**{**SMALL, **overrides}))


def final_state(**overrides) -> np.ndarray:
    return simulate(**overrides)[1].clean_concentrations[:, -1]


# --- accuracy ---------------------------------------------------------------------------------------------


def test_euler_error_halves_when_the_step_halves():
    short = {"n_frames": 40, "seed": 3}
    reference = final_state(integrator="rk4", n_substeps=64, **short)
    errors = [np.abs(final_state(n_substeps=n, **short) - reference).max() for n in (4, 8, 16)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 1.7) & (ratios < 2.3)), ratios


def test_rk4_error_falls_sixteenfold_when_the_step_halves():
    short = {"n_frames": 40, "seed": 3}
    reference = final_state(integrator="rk4", n_substeps=128, **short)
    errors = [np.abs(final_state(integrator="rk4", n_substeps=n, **short) - reference).max() for n in (4, 8)]
    assert 14 < errors[0] / errors[1] < 19, errors  # 17.3 measured, approaching 2^4 from above


def test_lsoda_agrees_with_a_fine_rk4_within_its_tolerance():
    short = {"n_frames": 40, "seed": 3}
    reference = simulate(integrator="rk4", n_substeps=64, **short)[1].clean_concentrations
    adaptive = simulate(integrator="lsoda", **short)[1].clean_concentrations
    np.testing.assert_allclose(adaptive, reference, rtol=1e-4, atol=1e-6)


def test_lsoda_simulates_a_network_too_stiff_for_explicit_steps():
    _, truth = simulate(**STIFF, integrator="lsoda")
    states = truth.clean_concentrations
    assert np.isfinite(states).all() and states.min() > -1e-6
    assert np.abs(np.diff(states[:, -20:], axis=1)).max() < np.abs(np.diff(states[:, :20], axis=1)).max()


# --- noise ------------------------------------------------------------------------------------------------

# k ~ 1e-9 and no homeostasis: the drift vanishes, so a frame-to-frame change is the diffusion alone
DRIFTLESS = {
    "log_k_min": -9.0,
    "log_k_max": -9.0,
    "homeostatic_lambda_per_type": [0.0, 0.0],
    "concentration_min": 100.0,
    "concentration_max": 200.0,
    "n_frames": 2000,
    "noise_model_level": 0.3,
}


@pytest.mark.parametrize("n_substeps", [1, 4])
def test_process_noise_is_a_diffusion_whose_spread_does_not_depend_on_the_substeps(n_substeps):
    _, truth = simulate(n_substeps=n_substeps, **DRIFTLESS)
    increments = np.diff(truth.clean_concentrations, axis=1)
    expected = 0.3 * np.sqrt(0.1)  # sigma * sqrt(delta_t)
    assert abs(increments.std() / expected - 1) < 0.03
    assert abs(increments.mean()) < 4 * expected / np.sqrt(increments.size)


def test_relative_measurement_noise_has_the_stated_coefficient_of_variation_and_no_bias():
    observations, truth = simulate(
        n_frames=2000, measurement_noise_type="relative", measurement_noise_level=0.05, seed=4
    )
    present = truth.clean_concentrations > 0
    ratio = observations.concentrations[present] / truth.clean_concentrations[present]
    assert abs(ratio.mean() - 1) < 0.002
    assert abs(ratio.std() - 0.05) < 0.002
    assert observations.concentrations[present].min() > 0  # a proportional error never crosses zero


def test_lsoda_refuses_process_noise():
    with pytest.raises(ValueError, match="process noise needs a fixed-step integrator"):
        MetabolismSimulation(integrator="lsoda", noise_model_level=0.1)


# --- failing loudly -----------------------------------------------------------------------------------------


def test_an_exploding_rk4_run_names_the_run_frame_and_node():
    with pytest.raises(SimulationDiverged, match=r"run 1 diverged at frame 1, node 0 .*lsoda"):
        simulate(**STIFF, integrator="rk4")


def test_euler_on_a_network_too_stiff_for_its_step_stops_instead_of_returning_wrong_data():
    with pytest.raises(SimulationDiverged, match=r"overdrew pools on 16.86% of steps"):
        simulate(**STIFF)


STIFF_RUN = [f"simulation.{k}={v}" for k, v in STIFF.items()] + [
    "simulation.integrator=rk4",
    "training.data_augmentation_loop=5",
    "training.lbfgs_iterations=0",
]


def test_a_diverged_simulation_is_recorded_as_a_failed_run_and_nothing_is_cached(tmp_path):
    config = load_config(None, STIFF_RUN)
    metrics = gnnlab.run(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert metrics["status"] == "failed: simulation diverged"
    assert "frame 1" in metrics["message"]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed: simulation diverged"
    assert not dataset_dir(config, tmp_path / "cache").exists()
    assert not list((tmp_path / "cache").glob("metabolism-*"))


def test_cli_run_of_a_diverging_simulation_prints_one_line_and_exits_non_zero(tmp_path, capsys):
    args = ["run", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"), "--quiet"]
    for override in STIFF_RUN:
        args += ["--set", override]
    assert main(args) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("gnnlab: run failed: simulation diverged: system 'metabolism': run 1")
