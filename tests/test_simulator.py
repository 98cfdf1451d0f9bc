"""Invariants of the metabolism simulator, on networks small enough to simulate in milliseconds."""

import dataclasses

import numpy as np
import pytest

from gnnlab.config import MetabolismSimulation
from gnnlab.systems import GroundTruth, Observations
from gnnlab.systems.metabolism.integrators import Kinetics
from gnnlab.systems.metabolism.network import Network, random_network
from gnnlab.systems.metabolism.simulator import (
    MetabolismGroundTruth,
    MetabolismObservations,
    MetabolismSystem,
)

SMALL = {"n_metabolites": 12, "n_reactions": 16, "n_frames": 300, "n_runs": 3, "n_validation_runs": 1}


def simulate(**overrides):
    return MetabolismSystem().simulate(MetabolismSimulation(**{**SMALL, **overrides}))


def network_of(observations: MetabolismObservations) -> Network:
    return Network(observations.reactants, observations.reactants + observations.stoichiometry)


# --- non-negativity ---------------------------------------------------------------------------------


def test_concentrations_are_never_negative_without_noise():
    observations, truth = simulate(seed=2)
    assert observations.concentrations.min() >= 0.0
    assert truth.clean_concentrations.min() >= 0.0


def test_process_noise_is_truncated_at_zero():
    observations, truth = simulate(noise_model_level=1.5, seed=2)
    clean = truth.clean_concentrations
    assert (clean == 0.0).any(), "the noise should push some metabolite below zero, exercising the truncation"
    assert clean.min() == 0.0
    assert observations.concentrations.min() == 0.0


def test_measurement_noise_is_clamped_at_zero():
    observations, truth = simulate(measurement_noise_level=0.5, seed=2)
    assert (observations.concentrations == 0.0).any(), "the noise should reach below zero somewhere"
    assert observations.concentrations.min() == 0.0
    assert truth.clean_concentrations.min() > 0.0  # noise is on the readings, not on the states


def test_measurement_noise_does_not_change_the_dynamics():
    _, clean = simulate(seed=5)
    observations, noisy = simulate(seed=5, measurement_noise_level=0.3)
    np.testing.assert_array_equal(noisy.clean_concentrations, clean.clean_concentrations)
    assert not np.allclose(observations.concentrations, clean.clean_concentrations.astype(np.float32))


# --- conservation and the vector field --------------------------------------------------------------


def test_autocatalytic_cycles_without_homeostasis_conserve_total_concentration():
    # 15 reactions of 3-cycles: every reaction is A + B -> 2B, so each column of S sums to zero
    _, truth = simulate(
        n_reactions=15, cycle_fraction=1.0, homeostatic_lambda_per_type=[0.0, 0.0], n_frames=400, seed=1
    )
    clean = truth.clean_concentrations
    assert clean.min() > 0.0, "a clamp at zero would add mass; these parameters must avoid it"
    total = clean.sum(axis=-1)
    np.testing.assert_allclose(total, total[:, :1] * np.ones_like(total), rtol=1e-9, atol=0)
    assert clean[:, -1].std() > 0 and not np.allclose(clean[:, 0], clean[:, -1]), "nothing happened"


def test_homeostasis_breaks_conservation():
    _, truth = simulate(
        n_reactions=15, cycle_fraction=1.0, homeostatic_lambda_per_type=[0.05, 0.1], n_frames=400, seed=1
    )
    total = truth.clean_concentrations.sum(axis=-1)
    assert np.abs(total[:, -1] / total[:, 0] - 1.0).max() > 1e-3


def kinetics_of(observations: MetabolismObservations, truth: MetabolismGroundTruth) -> Kinetics:
    return Kinetics(
        network_of(observations), truth.log_k, truth.homeostatic_lambda, truth.homeostatic_baseline
    )


@pytest.mark.parametrize("split", ["train", "validation"])
def test_every_unmasked_target_is_the_exact_vector_field_of_its_frame(split):
    # a strong sine input drains some metabolites, so both limited and plain Euler steps occur
    observations, truth = simulate(
        external_input_type="sine",
        n_input_metabolites=4,
        external_input_amplitude=2.0,
        external_input_period=10.0,
        seed=2,
    )
    frames = observations.frames(split)
    field = kinetics_of(observations, truth).field(frames.states.astype(float), frames.inputs)
    kept, masked = frames.mask == 1, frames.mask == 0
    assert masked.sum() > 0, "nothing masked: no pool emptied, the limiter was not exercised"
    np.testing.assert_allclose(frames.targets[kept], field[kept], rtol=1e-5, atol=1e-5)
    assert np.abs(frames.targets[masked] - field[masked]).max() > 0.1


def test_a_limited_euler_step_keeps_pools_non_negative_and_reactions_mass_balanced():
    observations, truth = simulate(n_reactions=15, cycle_fraction=1.0, seed=1)
    kinetics = kinetics_of(observations, truth)
    kinetics.lam = np.zeros_like(kinetics.lam)  # reactions only: the total is then conserved
    c = truth.clean_concentrations[:, 0]
    c[:, :3] = 1e-3  # nearly empty pools and a step long enough to overdraw them tenfold
    u = np.zeros_like(c)
    theta, _ = kinetics.limits(c, u, 50.0)
    assert (theta < 1).any()
    after, n_limited = kinetics.limited_step(c, u, 50.0)
    assert n_limited == (theta < 1).sum() > 0
    assert after.min() >= 0.0
    np.testing.assert_allclose(after.sum(axis=-1), c.sum(axis=-1), rtol=1e-12)


def test_derivatives_are_forward_differences_of_the_measured_concentrations():
    observations, _ = simulate(measurement_noise_level=0.2, seed=4)
    expected = np.diff(observations.concentrations.astype(np.float64), axis=1) / observations.delta_t
    np.testing.assert_allclose(observations.derivatives, expected, rtol=0, atol=1e-4)


def test_initial_concentrations_lie_in_the_configured_range():
    _, truth = simulate(concentration_min=2.0, concentration_max=3.0, n_frames=3, seed=6)
    initial = truth.clean_concentrations[:, 0]
    assert initial.min() >= 2.0 and initial.max() <= 3.0


def test_sine_input_drives_only_the_chosen_metabolites_within_its_amplitude():
    observations, _ = simulate(
        external_input_type="sine", n_input_metabolites=3, external_input_amplitude=0.7, seed=7
    )
    driven = np.flatnonzero(np.abs(observations.inputs).max(axis=(0, 1)) > 0)
    assert len(driven) == 3
    assert np.abs(observations.inputs).max() <= 0.7 + 1e-6
    assert np.abs(observations.inputs).max() > 0.6


# --- determinism and separation of observations from ground truth -----------------------------------


def records_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.arrays().values(), b.arrays().values(), strict=True))


def test_same_seed_gives_identical_data():
    first_obs, first_truth = simulate(seed=11, noise_model_level=0.05, measurement_noise_level=0.05)
    second_obs, second_truth = simulate(seed=11, noise_model_level=0.05, measurement_noise_level=0.05)
    assert records_equal(first_obs, second_obs)
    assert records_equal(first_truth, second_truth)


def test_different_seeds_give_different_data():
    first_obs, first_truth = simulate(seed=11)
    second_obs, second_truth = simulate(seed=12)
    assert not np.array_equal(first_obs.concentrations, second_obs.concentrations)
    assert not np.array_equal(first_truth.log_k, second_truth.log_k)


def test_ground_truth_is_a_separate_record_from_observations():
    observations, truth = simulate(seed=3)
    assert isinstance(observations, Observations) and not isinstance(observations, GroundTruth)
    assert isinstance(truth, MetabolismGroundTruth) and not isinstance(truth, Observations)
    for obs_array in observations.arrays().values():
        for truth_array in truth.arrays().values():
            assert not np.shares_memory(obs_array, truth_array)


def test_observations_have_no_hidden_field():
    names = [field.name for field in dataclasses.fields(MetabolismObservations)]
    for hidden in ("log_k", "metabolite_type", "homeostatic", "clean", "type"):
        assert not [name for name in names if hidden in name], f"observations expose {hidden!r}"
    truth_names = {field.name for field in dataclasses.fields(MetabolismGroundTruth)}
    assert {"log_k", "metabolite_types", "homeostatic_lambda", "homeostatic_baseline"} <= truth_names


# --- training frames ---------------------------------------------------------------------------------


def test_training_frames_come_from_the_training_runs_only():
    observations, _ = simulate(n_runs=3, n_validation_runs=1, seed=8)
    frames = observations.frames("train")
    n_frames, n_met = SMALL["n_frames"], SMALL["n_metabolites"]
    assert frames.states.shape == (2 * (n_frames - 1), n_met)
    np.testing.assert_array_equal(frames.states, observations.concentrations[:2, :-1].reshape(-1, n_met))
    np.testing.assert_array_equal(frames.targets, observations.derivatives[:2].reshape(-1, n_met))
    np.testing.assert_array_equal(frames.inputs, observations.inputs[:2, :-1].reshape(-1, n_met))


def test_validation_frames_are_the_held_out_runs():
    observations, _ = simulate(n_runs=4, n_validation_runs=2, seed=8)
    frames = observations.frames("validation")
    n_met = SMALL["n_metabolites"]
    assert observations.n_training_runs == 2
    np.testing.assert_array_equal(frames.states, observations.concentrations[2:, :-1].reshape(-1, n_met))
    np.testing.assert_array_equal(frames.targets, observations.derivatives[2:].reshape(-1, n_met))
    train_states = observations.frames("train").states
    assert not (frames.states[:, None, :] == train_states[None, :, :]).all(-1).any()


@pytest.mark.parametrize("split", ["train", "validation"])
def test_frames_mask_zero_readings_and_the_metabolites_of_reactions_consuming_them(split):
    observations, _ = simulate(noise_model_level=1.5, seed=2)
    runs = slice(0, 2) if split == "train" else slice(2, None)
    frames = observations.frames(split)
    empty = observations.concentrations[runs, 1:].reshape(-1, SMALL["n_metabolites"]) == 0
    assert empty.any(), "no zero reading: the mask would not be exercised"
    stoich = observations.stoichiometry
    for row, col in zip(*np.nonzero(frames.mask == 0), strict=True):
        reactions = np.flatnonzero(stoich[col] != 0)
        assert empty[row, col] or empty[row][(stoich[:, reactions] < 0).any(axis=1)].any()
    for row, col in zip(*np.nonzero(empty), strict=True):
        assert frames.mask[row, col] == 0
        for reaction in np.flatnonzero(stoich[col] < 0):
            assert (frames.mask[row, stoich[:, reaction] != 0] == 0).all()
    assert set(np.unique(frames.mask)) == {0.0, 1.0}


# --- network structure --------------------------------------------------------------------------------


def cycle_network(**overrides) -> Network:
    config = MetabolismSimulation(**{**SMALL, **overrides})
    return random_network(config, np.random.default_rng(config.seed))


def test_cycle_reactions_conserve_mass():
    network = cycle_network(n_reactions=16, cycle_fraction=0.5, seed=9)
    n_cycle = (16 // 2) // 3 * 3  # 2 cycles of 3 reactions
    stoich = network.stoichiometry[:, :n_cycle]
    np.testing.assert_array_equal(stoich.sum(axis=0), np.zeros(n_cycle))
    for j in range(n_cycle):  # A + B -> 2B: one food lost, one catalyst gained
        assert sorted(stoich[:, j][stoich[:, j] != 0]) == [-1, 1]
        assert network.reactants[:, j].sum() == 2 and network.products[:, j].sum() == 2


def test_cycles_close_and_use_every_metabolite_once_before_reuse():
    network = cycle_network(n_reactions=12, cycle_fraction=1.0, cycle_length=3, seed=10)
    catalyst = network.products.argmax(axis=0)  # the metabolite made twice
    food = (network.reactants - network.products).argmax(axis=0)  # the metabolite consumed
    for start in range(0, 12, 3):
        for i in range(3):  # each catalyst is the next reaction's food; the last one closes the cycle
            assert catalyst[start + i] == food[start + (i + 1) % 3]
    assert sorted(food) == list(range(12))  # 12 metabolites, 4 cycles of 3: each used exactly once


def test_random_reactions_are_mass_balanced():
    network = cycle_network(n_reactions=16, cycle_fraction=0.0, seed=12)
    np.testing.assert_array_equal(network.stoichiometry.sum(axis=0), np.zeros(16))
    assert (network.reactants.sum(axis=0) >= 1).all()


@pytest.mark.parametrize(("n_metabolites", "n_types"), [(100, 2), (90, 3)])
def test_metabolite_types_are_balanced(n_metabolites, n_types):
    _, truth = MetabolismSystem().simulate(
        MetabolismSimulation(
            n_metabolites=n_metabolites,
            n_metabolite_types=n_types,
            homeostatic_lambda_per_type=[0.001] * n_types,
            homeostatic_baseline_per_type=[float(t + 4) for t in range(n_types)],
            n_reactions=30,
            n_frames=3,
        )
    )
    np.testing.assert_array_equal(np.bincount(truth.metabolite_types), [n_metabolites // n_types] * n_types)
    # and the per-metabolite homeostatic parameters follow the type
    np.testing.assert_array_equal(truth.homeostatic_baseline, truth.metabolite_types + 4.0)
