"""Stability by construction: the adversarial inputs that turned the prior system's gradients into NaN give
finite losses and gradients here, and a non-finite number that does appear stops the run by name."""

import json
import math

import geoopt
import pytest
import torch
from conftest import PERTURBATION_TINY

import gnnlab
from gnnlab import data
from gnnlab.config import load_config
from gnnlab.models import build_model
from gnnlab.training.perturbation import train


@pytest.fixture
def observations(perturbation_config, cache):
    return data.load_observations(data.simulate_cached(perturbation_config, cache), "perturbation")


def gradients_after_one_loss(model, x: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    knocked = torch.arange(4)
    loss = model.predict(knocked, x).pow(2).mean()
    loss.backward()
    return loss, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


def all_finite(loss: torch.Tensor, grads: dict) -> bool:
    return bool(torch.isfinite(loss)) and all(bool(torch.isfinite(g).all()) for g in grads.values())


@pytest.mark.parametrize("geometry", ["poincare", "euclidean"])
@pytest.mark.parametrize("value", [0.0, 1e-20, -1e-20, 1e30], ids=["zero", "tiny", "tiny-negative", "huge"])
def test_adversarial_input_vectors_give_finite_loss_and_gradients(
    perturbation_config, observations, geometry, value
):
    config = load_config(None, [*PERTURBATION_TINY, f"model.geometry={geometry}"])
    model = build_model(config, observations)
    x = torch.full_like(model.features, value)
    loss, grads = gradients_after_one_loss(model, x)
    assert all_finite(loss, grads)
    assert any(bool(g.abs().sum() > 0) for g in grads.values())


def test_points_at_the_edge_of_the_ball_give_finite_loss_and_gradients(perturbation_config, observations):
    model = build_model(perturbation_config, observations)
    with torch.no_grad():
        for p in model.parameters():
            if isinstance(p, geoopt.ManifoldParameter):
                p.copy_(torch.ones_like(p) / p.numel() ** 0.5 * (1 - 1e-7))
    loss, grads = gradients_after_one_loss(model)
    assert all_finite(loss, grads)


def test_genes_without_any_observed_edge_give_finite_loss_and_gradients(cache):
    config = load_config(None, [*PERTURBATION_TINY, "simulation.observed_edge_drop=0.9"])
    observations = data.load_observations(data.simulate_cached(config, cache), "perturbation")
    isolated = set(range(observations.n_genes)) - set(observations.observed_edges.ravel().tolist())
    assert len(isolated) > 10
    loss, grads = gradients_after_one_loss(build_model(config, observations))
    assert all_finite(loss, grads)


@pytest.mark.parametrize("learning_rate", [5e-4, 1e-5])
def test_the_settings_that_failed_before_train_for_30_epochs_without_a_non_finite_value(
    perturbation_config, observations, learning_rate
):
    config = load_config(
        None, [*PERTURBATION_TINY, "training.n_epochs=30", f"training.learning_rate={learning_rate}"]
    )
    model = build_model(config, observations)
    result = train(model, observations, config.training, progress=False)
    assert result.status == "ok"
    assert all(math.isfinite(v) for v in result.history["loss"] + result.history["epoch_loss"])
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_a_non_finite_gradient_stops_training_naming_the_step_and_the_tensor(
    perturbation_config, observations
):
    model = build_model(perturbation_config, observations)
    model.sign.weight.register_hook(lambda grad: grad * float("nan"))
    result = train(model, observations, perturbation_config.training, progress=False)
    assert result.status == "failed: diverged"
    assert result.message == "gradient of sign.weight is non-finite at step 0"
    assert result.optimiser_steps == 0


def test_a_diverged_perturbation_run_is_recorded_without_nan_metrics(
    perturbation_config, cache, tmp_path, monkeypatch
):
    real_build = gnnlab.pipeline.build_model

    def poisoned(config, observations):
        model = real_build(config, observations)
        model.decoder[0].weight.register_hook(lambda grad: grad * float("inf"))
        return model

    monkeypatch.setattr("gnnlab.pipeline.build_model", poisoned)
    metrics = gnnlab.run(perturbation_config, tmp_path / "run", cache_dir=cache, progress=False)
    assert metrics["status"] == "failed: diverged"
    assert "step 0" in metrics["message"] and "decoder.0.weight" in metrics["message"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "top20_pearson" not in saved
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed: diverged"
