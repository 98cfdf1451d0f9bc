"""connectivity_R2 rewards the true W and nothing that differs from it in sign or scale."""

import numpy as np
import pytest

from gnnlab.config import load_config
from gnnlab.errors import ConfigError
from gnnlab.evaluation.signal import connectivity_metrics, effective_rank


@pytest.fixture
def network():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((50, 50)) * (rng.random((50, 50)) < 0.5)
    np.fill_diagonal(w, 0.0)
    target, source = np.nonzero(w)
    return w, np.stack([source, target]), w[target, source]


def test_perfect_W_scores_one(network):
    w, edges, weights = network
    assert connectivity_metrics(weights, edges, w)["connectivity_R2"] == pytest.approx(1.0)


def test_sign_flipped_W_scores_below_zero(network):
    w, edges, weights = network
    metrics = connectivity_metrics(-weights, edges, w)
    assert metrics["connectivity_R2"] < 0.9
    assert metrics["connectivity_sign_accuracy"] == 0.0


def test_wrong_global_scale_scores_below_point_nine(network):
    w, edges, weights = network
    assert connectivity_metrics(1.5 * weights, edges, w)["connectivity_R2"] < 0.9
    assert connectivity_metrics(0.6 * weights, edges, w)["connectivity_R2"] < 0.9


def test_pearson_R2_forgives_scale_that_connectivity_R2_does_not(network):
    w, edges, weights = network
    metrics = connectivity_metrics(2.0 * weights, edges, w)
    assert metrics["connectivity_pearson_R2"] == pytest.approx(1.0)
    assert metrics["connectivity_R2"] < 0.9


def test_documented_gauge_scale_is_divided_out(network):
    w, edges, weights = network
    assert connectivity_metrics(10.0 * weights, edges, w, scale=10.0)["connectivity_R2"] == pytest.approx(1.0)


def test_unknown_support_scores_edge_detection_over_all_pairs(network):
    w, _, _ = network
    target, source = np.nonzero(~np.eye(50, dtype=bool))
    edges = np.stack([source, target])
    noisy = w[target, source] + 0.01 * np.random.default_rng(1).standard_normal(len(source))
    metrics = connectivity_metrics(noisy, edges, w)
    assert metrics["edge_auroc"] > 0.99
    assert metrics["connectivity_R2_off_support"] == pytest.approx(0.008, abs=0.002)
    assert metrics["connectivity_R2_all_pairs"] > 0.99


def test_effective_rank_counts_components_for_99_percent_of_variance():
    rng = np.random.default_rng(0)
    three_dims = rng.standard_normal((2000, 3)) @ rng.standard_normal((3, 40))
    assert effective_rank(three_dims) == 3
    assert effective_rank(rng.standard_normal((5000, 40))) >= 38  # white noise fills almost every direction


def test_seed_003_gauge_penalties_are_refused_because_the_model_fixes_the_gauge():
    with pytest.raises(ConfigError, match="coeff_edge_norm must be 0"):
        load_config(None, ["system=signal", "training.coeff_edge_norm=1.0"])
