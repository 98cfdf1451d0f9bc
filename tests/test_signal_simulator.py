"""The signal simulator draws the network the config describes and refuses to return a diverged run."""

import numpy as np
import pytest

from gnnlab.config.signal import SignalSimulation
from gnnlab.errors import SimulationDiverged
from gnnlab.systems.signal.simulator import SignalSystem, random_connectivity


def _simulate(**keys):
    base = {"n_neurons": 30, "n_frames": 50, "n_burn_in_frames": 10, "seed": 1}
    return SignalSystem().simulate(SignalSimulation(**(base | keys)))


def test_chaotic_connectivity_has_spectral_radius_near_one():
    w = random_connectivity(SignalSimulation(n_neurons=400), np.random.default_rng(0))
    assert abs(np.max(np.abs(np.linalg.eigvals(w))) - 1.0) < 0.1


def test_filling_factor_sets_density_of_off_diagonal_entries():
    w = random_connectivity(
        SignalSimulation(n_neurons=200, connectivity_filling_factor=0.3), np.random.default_rng(0)
    )
    assert np.all(np.diag(w) == 0)
    assert abs(np.count_nonzero(w) / (200 * 199) - 0.3) < 0.01


def test_Dale_law_gives_each_presynaptic_column_one_sign():
    w = random_connectivity(SignalSimulation(n_neurons=100, Dale_law=True), np.random.default_rng(0))
    signs_per_column = [set(np.sign(col[col != 0])) for col in w.T]
    assert all(len(signs) == 1 for signs in signs_per_column)
    assert {-1.0, 1.0} == set().union(*signs_per_column)


def test_type_rows_are_applied_per_neuron():
    _, truth = _simulate(
        n_neuron_types=2,
        g=0.0,
        decay_per_type=(1.0, 4.0),
        baseline_per_type=(2.0, 2.0),
        self_recurrence_per_type=(0.0, 0.0),
        threshold_per_type=(0.0, 0.0),
        width_per_type=(1.0, 1.0),
        n_frames=2000,
    )
    final = truth.clean_activity[0, -1]
    np.testing.assert_allclose(final[truth.types == 0], 2.0, atol=1e-3)
    np.testing.assert_allclose(final[truth.types == 1], 0.5, atol=1e-3)


def test_known_support_puts_true_edges_in_observations():
    obs, truth = _simulate(connectivity_filling_factor=0.5, known_support=True)
    source, target = obs.edge_index
    assert np.all(truth.W[target, source] != 0)
    assert len(source) == np.count_nonzero(truth.W)


def test_unknown_support_offers_every_ordered_pair():
    obs, _ = _simulate(connectivity_filling_factor=0.5, known_support=False)
    assert obs.edge_index.shape == (2, 30 * 29)


def test_diverging_run_raises_naming_system_run_frame_and_node():
    pattern = r"system 'signal': run \d+ diverged at frame -?\d+, node \d+"
    with pytest.raises(SimulationDiverged, match=pattern):
        _simulate(g=1.0, decay_per_type=(0.0,), baseline_per_type=(1e5,), delta_t=1.0)
