"""Metric definitions, checked on inputs whose answer is known by hand."""

import math

import numpy as np
import pytest

from gnnlab.evaluation.metrics import (
    cluster_embeddings,
    linear_slope,
    matched_accuracy,
    mean_pearson,
    pearson_r2,
    r2_identity,
)


@pytest.fixture
def truth() -> np.ndarray:
    return np.random.default_rng(0).normal(size=200)


# --- r2_identity / pearson_r2 -------------------------------------------------------------------------


def test_r2_identity_of_a_perfect_prediction_is_exactly_one(truth):
    assert r2_identity(truth.copy(), truth) == 1.0


def test_r2_identity_matches_its_definition_on_a_small_example():
    true = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.0, 2.0, 3.0, 5.0])
    # SS_res = 1, SS_tot = 5  ->  1 - 1/5
    assert r2_identity(predicted, true) == pytest.approx(0.8, abs=1e-12)


def test_r2_identity_penalises_a_constant_offset_that_pearson_r2_ignores(truth):
    shifted = truth + 1.0
    assert pearson_r2(shifted, truth) == pytest.approx(1.0, abs=1e-12)
    # SS_res = n * 1, SS_tot = n * var(truth): the R² drops by 1 / var(truth)
    expected = 1.0 - 1.0 / truth.var()
    assert r2_identity(shifted, truth) == pytest.approx(expected, rel=1e-12)
    assert r2_identity(shifted, truth) < 0.5


def test_r2_identity_penalises_a_factor_two_scale_that_pearson_r2_ignores(truth):
    doubled = 2.0 * truth
    assert pearson_r2(doubled, truth) == pytest.approx(1.0, abs=1e-12)
    # residual = truth: SS_res / SS_tot = sum(t²) / sum((t - mean)²) >= 1, so R² <= 0
    assert r2_identity(doubled, truth) <= 0.0
    expected = 1.0 - (truth**2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert r2_identity(doubled, truth) == pytest.approx(expected, rel=1e-12)


def test_r2_identity_of_a_shuffled_truth_is_negative(truth):
    shuffled = np.random.default_rng(1).permutation(truth)
    # E[SS_res] = 2 SS_tot for an independent copy: R² around -1
    assert r2_identity(shuffled, truth) < 0.0
    assert pearson_r2(shuffled, truth) < 0.05


def test_r2_identity_flattens_multidimensional_inputs():
    true = np.arange(12.0).reshape(3, 4)
    predicted = true.copy()
    predicted[0, 0] += 1.0
    assert r2_identity(predicted, true) == pytest.approx(r2_identity(predicted.ravel(), true.ravel()))
    assert r2_identity(predicted, true) < 1.0


def test_r2_identity_of_a_diverged_float32_rollout_is_a_finite_large_negative_number():
    true = np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32)
    diverged = np.array([0.0, 1.0, 2.0, 3e20], dtype=np.float32)  # its square overflows float32
    with np.errstate(over="raise"):
        score = r2_identity(diverged, true)
    assert np.isfinite(score) and score == pytest.approx(1.0 - (3e20 - 3.0) ** 2 / 5.0, rel=1e-6)


def test_r2_identity_is_undefined_for_a_constant_truth():
    assert math.isnan(r2_identity(np.array([1.0, 2.0, 3.0]), np.full(3, 2.0)))


def test_pearson_r2_is_the_squared_correlation_including_anticorrelation():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert pearson_r2(-3.0 * x + 7.0, x) == pytest.approx(1.0, abs=1e-12)
    y = np.array([0.0, 1.0, 0.0, 1.0])
    expected = np.corrcoef(y, x)[0, 1] ** 2
    assert pearson_r2(y, x) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < pearson_r2(y, x) < 1.0


def test_pearson_r2_of_a_constant_prediction_is_zero():
    assert pearson_r2(np.full(5, 3.0), np.arange(5.0)) == 0.0
    assert pearson_r2(np.arange(5.0), np.full(5, 3.0)) == 0.0


# --- mean_pearson -----------------------------------------------------------------------------------


def test_mean_pearson_of_identical_series_is_one():
    series = np.random.default_rng(2).normal(size=(50, 4))
    assert mean_pearson(series, series.copy()) == pytest.approx(1.0, abs=1e-12)


def test_mean_pearson_averages_signed_correlations_per_column():
    series = np.random.default_rng(3).normal(size=(50, 2))
    predicted = series.copy()
    predicted[:, 1] = -predicted[:, 1]
    assert mean_pearson(predicted, series) == pytest.approx(0.0, abs=1e-12)


def test_mean_pearson_counts_a_constant_column_as_zero():
    series = np.random.default_rng(4).normal(size=(50, 2))
    predicted = series.copy()
    predicted[:, 1] = 5.0  # the model predicts a flat line for node 1
    assert mean_pearson(predicted, series) == pytest.approx(0.5, abs=1e-12)
    truth_flat = series.copy()
    truth_flat[:, 0] = 1.0  # the true series of node 0 is flat
    assert mean_pearson(series, truth_flat) == pytest.approx(0.5, abs=1e-12)


# --- matched_accuracy -------------------------------------------------------------------------------


def test_matched_accuracy_of_a_relabelling_of_the_truth_is_one():
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    relabelled = np.array([7, 7, 7, 3, 3, 0, 0, 0])
    assert matched_accuracy(relabelled, truth) == 1.0


def test_matched_accuracy_counts_noise_label_as_wrong():
    truth = np.array([0, 0, 1, 1])
    labels = np.array([5, -1, 7, 7])
    assert matched_accuracy(labels, truth) == 0.75


def test_matched_accuracy_matches_one_cluster_to_one_class():
    truth = np.array([0, 0, 0, 1, 1, 1])
    # one cluster covering everything can only be matched to one class
    assert matched_accuracy(np.zeros(6, dtype=int), truth) == 0.5
    # an over-split class: only the larger piece of class 0 is matched
    labels = np.array([0, 0, 1, 2, 2, 2])
    assert matched_accuracy(labels, truth) == pytest.approx(5 / 6)


def test_matched_accuracy_of_all_noise_is_zero():
    assert matched_accuracy(np.full(4, -1), np.array([0, 0, 1, 1])) == 0.0


# --- cluster_embeddings -----------------------------------------------------------------------------


def test_two_separated_blobs_are_found_as_two_clusters():
    rng = np.random.default_rng(5)
    embedding = np.concatenate(
        [rng.normal((0.0, 0.0), 0.5, size=(50, 2)), rng.normal((10.0, 10.0), 0.5, size=(50, 2))]
    )
    truth = np.repeat([1, 0], 50)  # class ids need not match cluster ids
    result = cluster_embeddings(embedding, truth)
    assert result["accuracy"] == 1.0
    assert result["n_clusters"] == 2
    assert result["silhouette"] > 0.5


def test_a_single_blob_is_one_cluster_with_zero_silhouette():
    # a uniformly filled disc: dense everywhere, so DBSCAN cannot split it
    rng = np.random.default_rng(6)
    radius, angle = np.sqrt(rng.uniform(size=200)), rng.uniform(0.0, 2 * np.pi, size=200)
    embedding = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    truth = np.repeat([0, 1], 100)
    result = cluster_embeddings(embedding, truth)
    assert result["n_clusters"] == 1
    assert result["silhouette"] == 0.0
    assert result["accuracy"] <= 0.5


def test_cluster_embeddings_is_invariant_to_the_scale_of_the_embedding():
    rng = np.random.default_rng(7)
    embedding = np.concatenate([rng.normal(0.0, 0.5, size=(50, 2)), rng.normal(10.0, 0.5, size=(50, 2))])
    truth = np.repeat([0, 1], 50)
    assert cluster_embeddings(embedding * 1e-3, truth) == pytest.approx(cluster_embeddings(embedding, truth))


# --- linear_slope -----------------------------------------------------------------------------------


def test_linear_slope_recovers_slope_and_intercept_of_a_line():
    x = np.linspace(-2.0, 5.0, 20)
    slope, intercept = linear_slope(x, 3.0 * x - 2.0)
    assert slope == pytest.approx(3.0, abs=1e-10)
    assert intercept == pytest.approx(-2.0, abs=1e-10)


def test_linear_slope_is_the_least_squares_fit_of_noisy_points():
    x = np.array([0.0, 1.0, 2.0])
    y = np.array([0.0, 2.0, 1.0])
    # by hand: slope = cov(x, y) / var(x) = 0.5, intercept = mean(y) - 0.5 * mean(x) = 0.5
    slope, intercept = linear_slope(x, y)
    assert slope == pytest.approx(0.5, abs=1e-12)
    assert intercept == pytest.approx(0.5, abs=1e-12)
