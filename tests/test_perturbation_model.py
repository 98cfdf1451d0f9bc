"""The perturbation models: they start as the mean-effect baseline, keep ball parameters on the ball under
Riemannian Adam, share one code path between the two geometries, and learn something the baseline cannot."""

import json
from pathlib import Path

import geoopt
import numpy as np
import pytest
import torch

import gnnlab
from gnnlab import data
from gnnlab.config import load_config
from gnnlab.evaluation import load_ground_truth
from gnnlab.evaluation.perturbation import effect_metrics, evaluate, mean_effect
from gnnlab.models import build_model
from gnnlab.training.perturbation import optimisers, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dataset(perturbation_config, cache):
    return data.simulate_cached(perturbation_config, cache)


@pytest.fixture
def observations(dataset):
    return data.load_observations(dataset, "perturbation")


def test_shipped_perturbation_config_equals_the_system_defaults():
    assert load_config(ROOT / "configs" / "perturbation.yaml") == load_config(None, ["system=perturbation"])


@pytest.mark.parametrize("architecture", ["graph", "mlp"])
def test_an_untrained_model_predicts_the_mean_effect_off_the_target(
    perturbation_config, observations, architecture
):
    config = perturbation_config.model_copy(
        update={"model": perturbation_config.model.model_copy(update={"architecture": architecture})}
    )
    model = build_model(config, observations)
    knocked = observations.gene_index(observations.heldout_perturbations)
    with torch.no_grad():
        predicted = model.predict(torch.as_tensor(knocked)).numpy()
    off_target = np.ones_like(predicted, dtype=bool)
    off_target[np.arange(len(knocked)), knocked] = False
    baseline = np.broadcast_to(mean_effect(observations), predicted.shape)
    assert np.allclose(predicted[off_target], baseline[off_target], atol=1e-6)


def test_ball_parameters_go_to_riemannian_adam_and_the_rest_to_adamw(perturbation_config, observations):
    model = build_model(perturbation_config, observations)
    adamw, riemannian = optimisers(model, perturbation_config.training)
    assert isinstance(adamw, torch.optim.AdamW) and isinstance(riemannian, geoopt.optim.RiemannianAdam)
    on_ball = {id(p) for g in riemannian.param_groups for p in g["params"]}
    assert on_ball == {id(p) for p in model.parameters() if isinstance(p, geoopt.ManifoldParameter)}
    assert len(on_ball) == perturbation_config.model.n_layers  # one Möbius bias per layer


def test_ball_parameters_stay_inside_the_ball_after_training(perturbation_config, observations):
    model = build_model(perturbation_config, observations)
    assert train(model, observations, perturbation_config.training, progress=False).status == "ok"
    with torch.no_grad():
        z = model.embed()
    biases = [p.detach() for p in model.parameters() if isinstance(p, geoopt.ManifoldParameter)]
    assert all(float(b.norm()) < 1.0 for b in biases)
    assert float(z.norm(dim=-1).max()) < 1.0
    assert max(float(b.norm()) for b in biases) > 0  # they did move off the origin


def test_a_learned_curvature_moves_and_stays_positive(perturbation_config, observations):
    config = load_config(None, ["system=perturbation", "model.learn_curvature=true", "model.curvature=0.5"])
    model = build_model(config, observations)
    training = perturbation_config.training
    assert train(model, observations, training, progress=False).status == "ok"
    assert model.curvature != pytest.approx(0.5) and model.curvature > 0


def test_the_euclidean_twin_has_the_same_parameters_at_curvature_zero(perturbation_config, observations):
    flat_config = perturbation_config.model_copy(
        update={"model": perturbation_config.model.model_copy(update={"geometry": "euclidean"})}
    )
    curved, flat = build_model(perturbation_config, observations), build_model(flat_config, observations)
    shapes = lambda m: {n: p.shape for n, p in m.named_parameters() if p.requires_grad}  # noqa: E731
    assert shapes(curved) == shapes(flat)
    assert curved.curvature == 1.0 and flat.curvature == 0.0


def test_the_euclidean_twin_is_the_ball_in_the_limit_of_zero_curvature(perturbation_config, observations):
    """The only difference between the two geometries is the curvature: same initial values under the same
    seed, and a ball of vanishing curvature predicts what the flat twin predicts."""
    model = perturbation_config.model
    almost_flat = perturbation_config.model_copy(
        update={"model": model.model_copy(update={"curvature": 1e-8})}
    )
    flat_config = perturbation_config.model_copy(
        update={"model": model.model_copy(update={"geometry": "euclidean"})}
    )
    curved, flat = build_model(almost_flat, observations), build_model(flat_config, observations)
    values = lambda m: {n: p for n, p in m.state_dict().items() if not n.startswith("manifold.")}  # noqa: E731
    assert values(curved).keys() == values(flat).keys()
    assert all(torch.equal(values(curved)[n], values(flat)[n]) for n in values(flat))
    with torch.no_grad():  # the decoder's last layer starts at zero; give both the same non-zero one
        last = torch.randn_like(flat.decoder[-1].weight)
        curved.decoder[-1].weight.copy_(last), flat.decoder[-1].weight.copy_(last)
        assert flat.edge_shares().abs().max() > 1e-3
        assert torch.allclose(curved.edge_shares(), flat.edge_shares(), atol=1e-5)
        knocked = torch.arange(10)
        assert torch.allclose(curved.predict(knocked), flat.predict(knocked), atol=1e-5)


def test_metrics_of_a_perfect_prediction_and_of_a_sign_flip():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(3, 40))
    knocked = np.array([0, 1, 2])
    perfect = effect_metrics(true, true, knocked)
    assert perfect["mse"] == 0 and perfect["top20_pearson"] == pytest.approx(1.0)
    assert perfect["sign_accuracy"] == 1.0
    flipped = effect_metrics(-true, true, knocked)
    assert flipped["top20_pearson"] == pytest.approx(-1.0) and flipped["sign_accuracy"] == 0.0


def test_a_small_model_beats_the_mean_effect_baseline_on_held_out_knock_downs(
    perturbation_config, observations, dataset
):
    model = build_model(perturbation_config, observations)
    assert train(model, observations, perturbation_config.training, progress=False).status == "ok"
    metrics = evaluate(model, observations, load_ground_truth(dataset, "perturbation"))
    assert metrics["top20_pearson"] > metrics["baseline_top20_pearson"] + 0.2
    assert metrics["pearson"] > metrics["baseline_pearson"] + 0.1


def test_a_perturbation_run_writes_the_run_record(perturbation_config, cache, tmp_path):
    out = tmp_path / "run"
    metrics = gnnlab.run(perturbation_config, out, cache_dir=cache, progress=False)
    for name in ("config.yaml", "run.json", "metrics.json", "analysis.log", "history.json", "model.pt"):
        assert (out / name).is_file(), name
    assert {p.name for p in (out / "plots").glob("*.png")} == {"effects.png", "embedding.png", "loss.png"}
    assert metrics["status"] == "ok"
    for key in ("top20_pearson", "top20_mse", "pearson", "mse", "sign_accuracy", "edge_auroc"):
        assert key in metrics and f"baseline_{key}" in metrics or key == "edge_auroc"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert gnnlab.evaluate(out, cache_dir=cache, plots=False) == metrics
