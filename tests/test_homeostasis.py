"""Phase 2 (issue 8): freezing freezes, no label reaches training, the slope/offset metrics measure what they
say, each seed-001 strategy changes training as documented, and a small two-type system is recovered."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gnnlab
from gnnlab import data
from gnnlab.config import load_config
from gnnlab.data import GROUND_TRUTH_FILE
from gnnlab.evaluation import load_ground_truth
from gnnlab.evaluation.metabolism import _node_curves, homeostasis_metrics
from gnnlab.models import build_model
from gnnlab.pipeline import train_model
from gnnlab.training import homeostasis

SRC = Path(gnnlab.__file__).parent

PHASE1 = [  # 20 metabolites, 30 reactions: phase 1 in a few seconds
    "simulation.n_metabolites=20",
    "simulation.n_reactions=30",
    "simulation.n_frames=800",
    "simulation.n_runs=4",
    "training.data_augmentation_loop=20",
    "training.lbfgs_iterations=20",
    "training.n_threads=1",
]
PHASE2 = [
    "training.homeostasis_training=true",
    "training.homeostasis_data_augmentation_loop=1",
    "training.homeostasis_lbfgs_iterations=10",
]


@pytest.fixture(scope="module")
def phase1_run(tmp_path_factory) -> tuple[Path, Path]:
    """(phase-1 run directory, dataset cache), shared by the module's tests."""
    root = tmp_path_factory.mktemp("phase1")
    cache = root / "cache"
    gnnlab.run(load_config(None, PHASE1), root / "run", cache_dir=cache, progress=False, plots=False)
    return root / "run", cache


def _phase2(phase1_run, *overrides: str):
    """Phase 2 from the shared phase-1 run: (model, result, observations)."""
    run_dir, cache = phase1_run
    config = load_config(
        None, [*PHASE1, *PHASE2, "training.skip_phase1=true", f"training.phase1_run={run_dir}", *overrides]
    )
    observations = data.load_observations(data.simulate_cached(config, cache), "metabolism")
    model, result = train_model(config, observations, progress=False)
    assert result.status == "ok", result.message
    return model, result, observations


def _node_weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.node.parameters()])


def _phase1_state(phase1_run) -> dict[str, torch.Tensor]:
    return torch.load(phase1_run[0] / "model.pt", weights_only=True)


# --- freezing ----------------------------------------------------------------------------------------------


def test_frozen_stoichiometry_leaves_k_and_g_bit_identical_while_node_and_embeddings_train(phase1_run):
    model, _, _ = _phase2(phase1_run)
    before, after = _phase1_state(phase1_run), model.state_dict()
    reaction = [name for name in before if name == "log_k" or name.startswith("substrate.")]
    assert len(reaction) > 1
    for name in reaction:
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["embedding"], after["embedding"])
    assert all(p.requires_grad for p in model.parameters())  # restored for whatever comes next


def test_unfrozen_stoichiometry_trains_k_in_phase_2(phase1_run):
    model, _, _ = _phase2(
        phase1_run, "training.freeze_stoichiometry=false", "training.homeostasis_objective=residual"
    )
    assert not torch.equal(_phase1_state(phase1_run)["log_k"], model.log_k.detach())


def test_gnnlab_run_does_both_phases_in_one_directory_with_both_losses_in_history(tmp_path):
    config = load_config(None, [*PHASE1, *PHASE2])
    metrics = gnnlab.run(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, plots=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert metrics["status"] == "ok"
    assert len(history["loss"]) > 0 and len(history["phase2_loss"]) == metrics["phase2_steps"] > 0
    for key in ("phase2_loss", "phase2_node_magnitude", "max_slope_ratio_error", "MLP_node_offset_ratio_1"):
        assert math.isfinite(metrics[key]), key
    assert metrics["phase2_node_magnitude"] > 0


def test_a_phase1_run_of_another_simulation_is_refused(phase1_run):
    with pytest.raises(ValueError, match="simulation"):
        _phase2(phase1_run, "simulation.seed=7")


# --- no labels, provably ---------------------------------------------------------------------------------


def test_permuting_the_types_in_the_ground_truth_leaves_the_phase2_model_bit_identical(phase1_run, tmp_path):
    run_dir, cache = phase1_run
    overrides = [*PHASE1, *PHASE2, "training.skip_phase1=true", f"training.phase1_run={run_dir}"]
    config = load_config(None, overrides)
    gnnlab.run(config, tmp_path / "original", cache_dir=cache, progress=False, plots=False)
    dataset = data.dataset_dir(config, cache)
    original_truth = (dataset / GROUND_TRUTH_FILE).read_bytes()
    with np.load(dataset / GROUND_TRUTH_FILE) as archive:
        truth = dict(archive)
    order = np.random.default_rng(0).permutation(len(truth["metabolite_types"]))
    for key in ("metabolite_types", "homeostatic_lambda", "homeostatic_baseline"):
        truth[key] = truth[key][order]  # types move together with their lambda and baseline
    assert not np.array_equal(
        truth["metabolite_types"], np.load(dataset / GROUND_TRUTH_FILE)["metabolite_types"]
    )
    np.savez(dataset / GROUND_TRUTH_FILE, **truth)
    try:
        gnnlab.run(config, tmp_path / "permuted", cache_dir=cache, progress=False, plots=False)
    finally:
        (dataset / GROUND_TRUTH_FILE).write_bytes(original_truth)  # the module's other tests share the cache
    original = torch.load(tmp_path / "original" / "model.pt", weights_only=True)
    again = torch.load(tmp_path / "permuted" / "model.pt", weights_only=True)
    for name in original:
        assert torch.equal(original[name], again[name]), name


def test_phase2_and_its_auxiliary_loss_run_with_ground_truth_unavailable(phase1_run, monkeypatch):
    run_dir, cache = phase1_run
    real_load = np.load

    def guarded_load(path, *args, **kwargs):
        if "ground_truth" in str(path):
            raise AssertionError(f"training tried to read ground truth: {path}")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", guarded_load)
    monkeypatch.setattr("gnnlab.evaluation.ground_truth.load_ground_truth", _forbidden)
    _, result, _ = _phase2(phase1_run, "training.coeff_embedding_cluster=1.0")
    assert len(result.history["phase2_loss"]) > 0


def _forbidden(*args, **kwargs):
    raise AssertionError("ground truth loader called during training")


def test_no_training_side_module_names_a_hidden_field():
    hidden = ("metabolite_types", "homeostatic_lambda", "homeostatic_baseline", "clean_concentrations")
    for path in [*(SRC / "training").glob("*.py"), *(SRC / "models").glob("*.py")]:
        text = path.read_text()
        assert not any(name in text for name in hidden), path


# --- metrics -----------------------------------------------------------------------------------------------


class _LinearRegulation(nn.Module):
    """A hand-built MLP_node: input (c, a0, a1) -> a0 * c + a1, so a_i = (slope_i, offset_i)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[..., 0] * x[..., 1] + x[..., 2]).unsqueeze(-1)


def _hand_built(phase1_run, gain: float = 1.0):
    run_dir, cache = phase1_run
    config = load_config(None, PHASE1)
    dataset = data.simulate_cached(config, cache)
    observations = data.load_observations(dataset, "metabolism")
    truth = load_ground_truth(dataset, "metabolism")
    model = build_model(config, observations)
    model.node = _LinearRegulation()
    with torch.no_grad():
        model.embedding.copy_(
            torch.as_tensor(
                np.stack(
                    [-truth.homeostatic_lambda, truth.homeostatic_lambda * truth.homeostatic_baseline], 1
                )
            )
        )
    model.node_gain = gain
    sweep, out = _node_curves(model, observations)
    return homeostasis_metrics(sweep, out, truth), truth


def test_slope_and_offset_metrics_recover_a_hand_built_node_exactly(phase1_run):
    metrics, truth = _hand_built(phase1_run)
    for t in np.unique(truth.metabolite_types):
        assert metrics[f"MLP_node_slope_ratio_{t}"] == pytest.approx(1.0, abs=1e-4)
        assert metrics[f"MLP_node_offset_ratio_{t}"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["max_slope_ratio_error"] < 1e-4 and metrics["max_offset_ratio_error"] < 1e-4


def test_slope_metrics_measure_the_node_term_with_its_amplification():
    """The metric reads the function the dynamics use: MLP_node times its gain."""
    sweep = np.tile(np.linspace(1.0, 9.0, 50), (4, 1))
    truth = type("Truth", (), {})()
    truth.metabolite_types = np.array([0, 0, 1, 1])
    truth.homeostatic_lambda = np.array([0.001, 0.001, 0.002, 0.002])
    truth.homeostatic_baseline = np.array([4.0, 4.0, 6.0, 6.0])
    slopes = np.array([-0.0015, -0.0015, -0.001, -0.001])  # ratios 1.5 and 0.5: average 1.0, worst 0.5
    out = slopes[:, None] * sweep + (truth.homeostatic_lambda * truth.homeostatic_baseline)[:, None]
    metrics = homeostasis_metrics(sweep, out, truth)
    assert metrics["avg_slope_ratio"] == pytest.approx(1.0)
    assert metrics["max_slope_ratio_error"] == pytest.approx(0.5)


def test_hand_built_node_with_gain_two_measures_twice_the_slope(phase1_run):
    metrics, truth = _hand_built(phase1_run, gain=2.0)
    assert metrics["MLP_node_slope_ratio_0"] == pytest.approx(2.0, abs=1e-4)


# --- strategies --------------------------------------------------------------------------------------------

TRAINING = load_config(None).training


def _training(**update):
    return TRAINING.model_copy(update=update)


def test_amplification_starts_at_its_factor_and_returns_linearly_to_exactly_one():
    training = _training(homeostasis_amplification=50.0, homeostasis_amplification_decay=0.5)
    gains = [homeostasis.amplification(step, 100, training) for step in range(100)]
    assert gains[0] == 50.0 and gains[25] == pytest.approx(25.5) and gains[50:] == [1.0] * 50


def test_amplification_scales_the_node_term_during_training_and_ends_at_one(phase1_run):
    plain, _, _ = _phase2(phase1_run)
    amplified, _, _ = _phase2(phase1_run, "training.homeostasis_amplification=20")
    assert amplified.node_gain == 1.0
    assert not torch.equal(_node_weights(plain), _node_weights(amplified))


def test_curriculum_halves_the_rollout_length_in_the_second_half():
    training = _training(homeostasis_time_step=8, homeostasis_time_step_curriculum=True)
    lengths = [homeostasis.rollout_length(s, 10, training, torch.Generator()) for s in range(10)]
    assert lengths == [8] * 5 + [4] * 5


def test_multiscale_rollout_draws_every_listed_length():
    training = _training(homeostasis_rollout_lengths=(2, 4, 8))
    generator = torch.Generator().manual_seed(0)
    drawn = {homeostasis.rollout_length(s, 100, training, generator) for s in range(100)}
    assert drawn == {2, 4, 8}


def test_warmup_then_cosine_learning_rate_factor():
    training = _training(homeostasis_lr_warmup_steps=10, homeostasis_lr_schedule="cosine")
    factors = [homeostasis.learning_rate_factor(s, 110, training) for s in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0
    assert factors[60] == pytest.approx(0.5) and factors[110] == pytest.approx(0.0)
    constant = _training(homeostasis_lr_schedule="constant")
    assert homeostasis.learning_rate_factor(500, 100, constant) == 1.0


def test_gradient_accumulation_divides_the_optimiser_steps(phase1_run):
    _, plain, _ = _phase2(phase1_run)
    _, accumulated, _ = _phase2(phase1_run, "training.homeostasis_gradient_accumulation=4")
    assert accumulated.phase2_steps == plain.phase2_steps // 4


def test_stop_gradient_changes_the_rollout_gradient_of_mlp_node(phase1_run):
    model, _, observations = _phase2(phase1_run)
    data_ = homeostasis._prepare_data(model, observations, True, torch.device("cpu"))
    grads = []
    for stop in (False, True):
        model.zero_grad()
        loss = homeostasis._rollout_loss(model, data_, 4, 8, torch.Generator().manual_seed(0), stop)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.node.parameters()]))
    assert not torch.allclose(grads[0], grads[1])


def test_rollout_objective_with_bptt_trains(phase1_run):
    _, result, _ = _phase2(
        phase1_run, "training.homeostasis_objective=rollout", "training.homeostasis_time_step=4"
    )
    assert math.isfinite(result.phase2_loss)


def test_cluster_loss_is_low_when_alike_responding_metabolites_sit_together_and_ignores_scale(monkeypatch):
    curves = torch.tensor([[0.0, 1.0], [0.0, 1.1], [5.0, 0.0], [5.1, 0.0]])  # metabolites 0, 1 and 2, 3 alike
    monkeypatch.setattr(homeostasis, "response_curves", lambda model, grid: curves)

    def loss(embedding: list[list[float]]) -> float:
        model = type("Model", (), {"embedding": torch.tensor(embedding)})()
        return float(homeostasis.cluster_loss(model, torch.zeros(2)))

    together = [[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [3.1, 0.0]]
    apart = [[0.0, 0.0], [3.0, 0.0], [0.1, 0.0], [3.1, 0.0]]
    assert loss(together) < 0.1 < 1.0 < loss(apart)
    assert loss([[10 * x for x in row] for row in together]) == pytest.approx(loss(together))


def test_cluster_loss_moves_the_embeddings_when_they_train(phase1_run):
    trained = "training.learning_rate_embedding_homeostasis=0.01"
    plain, _, _ = _phase2(phase1_run, trained)
    clustered, _, _ = _phase2(phase1_run, trained, "training.coeff_embedding_cluster=1.0")
    assert not torch.equal(plain.embedding, clustered.embedding)


def test_offset_penalty_lowers_the_node_output_at_zero_concentration(phase1_run):
    plain, _, _ = _phase2(phase1_run)
    penalised, _, _ = _phase2(phase1_run, "training.coeff_homeostasis_offset=100")
    with torch.no_grad():
        assert float(homeostasis.offset_penalty(penalised)) < float(homeostasis.offset_penalty(plain))


def test_gradient_clipping_changes_training(phase1_run):
    plain, _, _ = _phase2(phase1_run)
    clipped, _, _ = _phase2(phase1_run, "training.homeostasis_grad_clip_norm=1e-6")
    assert not torch.equal(_node_weights(plain), _node_weights(clipped))


@pytest.mark.parametrize("kind", ["fresh", "kaiming"])
def test_node_reinitialisation_starts_mlp_node_at_zero_output(kind):
    node = nn.Sequential(nn.Linear(3, 8), nn.SiLU(), nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 1))
    homeostasis.reinitialise_node(node, kind, seed=0)
    assert torch.equal(node(torch.randn(5, 3)), torch.zeros(5, 1))
    std = node[0].weight.std().item()
    assert std > 0.5 if kind == "kaiming" else std < 0.5  # Kaiming: sqrt(2/3); default: U(±1/sqrt 3)


def test_regulation_fit_recovers_each_metabolites_line():
    c = np.linspace(1.0, 9.0, 200)[:, None] + np.arange(4.0)
    slope_true, offset_true = np.array([-1.0, -1.0, -3.0, -3.0]), np.array([4.0, 4.0, 12.0, 12.0])
    slope, offset = homeostasis.regulation_fit(c, slope_true * c + offset_true, np.ones_like(c), ridge=1e-12)
    np.testing.assert_allclose(slope, slope_true, atol=1e-6)
    np.testing.assert_allclose(offset, offset_true, atol=1e-5)


def test_reaction_correction_keeps_a_rate_error_of_the_frozen_reactions_out_of_the_lines():
    rng = np.random.default_rng(0)
    c = rng.uniform(1.0, 9.0, size=(400, 3))
    fluxes = np.stack([c[:, 0] * c[:, 1], c[:, 1] * c[:, 2]], axis=1)  # two reactions
    stoichiometry = np.array([[-1, 0], [1, -1], [0, 1]])
    lines = -0.002 * c + 0.01
    residual = lines + 0.05 * fluxes[:, :1] * stoichiometry[:, 0]  # reaction 0's rate 5 % off
    plain, _ = homeostasis.regulation_fit(c, residual, np.ones_like(c))
    corrected, offset = homeostasis.regulation_fit(
        c, residual, np.ones_like(c), fluxes=fluxes, stoichiometry=stoichiometry, ridge=1e-12
    )
    assert np.abs(plain + 0.002).max() > 0.01  # the rate error reads as regulation ...
    np.testing.assert_allclose(corrected, -0.002, atol=1e-6)  # ... unless it is fitted alongside
    np.testing.assert_allclose(offset, 0.01, atol=1e-5)


def test_grouping_finds_the_groups_and_folds_outlying_estimates_into_their_own_group():
    rng = np.random.default_rng(0)
    slope = np.r_[-1.0 + 0.1 * rng.standard_normal(30), -2.0 + 0.1 * rng.standard_normal(30)]
    offset = np.r_[4.0 + 0.05 * rng.standard_normal(30), 12.0 + 0.05 * rng.standard_normal(30)]
    slope[0], slope[30] = -2.5, 0.5  # outlying slopes; their offsets still say which group
    features = homeostasis._robust_standardise(np.stack([slope, offset], 1))
    labels = homeostasis.group_regulation(features, 0.1)
    assert len(np.unique(labels)) == 2
    assert (labels[:30] == labels[0]).all() and (labels[30:] == labels[30]).all()
    pooled_slope, _ = homeostasis.pooled_lines(slope, offset, labels)
    assert abs(pooled_slope[0] + 1.0) < 0.1 and abs(pooled_slope[30] + 2.0) < 0.1
    embedding = homeostasis.regulation_embedding(slope, offset, 3, labels)
    assert (embedding[:, 2] == 0).all()
    spread = [np.ptp(embedding[labels == g, :2], axis=0).max() for g in np.unique(labels)]
    gap = np.linalg.norm(embedding[:30, :2].mean(0) - embedding[30:, :2].mean(0))
    assert max(spread) < gap / 2  # outliers stay inside their group


# --- recovery ----------------------------------------------------------------------------------------------

TWO_TYPES = [  # 30 metabolites in two types, 45 reactions: both phases in well under a minute
    "simulation.n_metabolites=30",
    "simulation.n_reactions=45",
    "simulation.n_frames=1000",
    "simulation.n_runs=3",
    "training.data_augmentation_loop=60",
    "training.lbfgs_iterations=100",
    "training.n_threads=1",
    "training.homeostasis_training=true",
]


def test_a_small_two_type_system_is_recovered_without_labels(tmp_path):
    config = load_config(None, TWO_TYPES)
    metrics = gnnlab.run(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, plots=False)
    assert metrics["embedding_cluster_acc"] == 1.0 and metrics["embedding_n_clusters"] == 2
    assert metrics["max_slope_ratio_error"] < 0.1 and metrics["max_offset_ratio_error"] < 0.1
