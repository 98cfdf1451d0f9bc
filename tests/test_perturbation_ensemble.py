"""Deep ensembles (training.n_ensemble): member 0 is the single model, the ensemble predicts its members'
mean, every member is checked for non-finite numbers, and a run of an ensemble is recorded and re-scored."""

import json
import math

import pytest
import torch
from conftest import PERTURBATION_TINY

import gnnlab
from gnnlab import data
from gnnlab.config import load_config
from gnnlab.models import build_model
from gnnlab.models.perturbation import PerturbationEnsemble, PerturbationGNN, member_seed
from gnnlab.training.perturbation import train


@pytest.fixture
def observations(perturbation_config, cache):
    return data.load_observations(data.simulate_cached(perturbation_config, cache), "perturbation")


def ensemble_config(k: int, *extra: str):
    return load_config(None, [*PERTURBATION_TINY, f"training.n_ensemble={k}", *extra])


def held_out_predictions(model, observations) -> torch.Tensor:
    with torch.no_grad():
        return model.predict(torch.as_tensor(observations.gene_index(observations.heldout_perturbations)))


def test_one_member_is_the_single_model_and_the_default(perturbation_config, observations):
    assert perturbation_config.training.n_ensemble == 1
    model = build_model(ensemble_config(1), observations)
    assert isinstance(model, PerturbationGNN)  # not wrapped: its state dict and run records are as before
    assert member_seed(perturbation_config.training.seed, 0) == perturbation_config.training.seed


@pytest.mark.parametrize("geometry", ["poincare", "euclidean"])
def test_member_0_of_a_trained_ensemble_predicts_exactly_what_the_single_model_predicts(
    perturbation_config, observations, geometry
):
    single_config = load_config(None, [*PERTURBATION_TINY, f"model.geometry={geometry}"])
    single = build_model(single_config, observations)
    assert train(single, observations, single_config.training, progress=False).status == "ok"
    config = ensemble_config(3, f"model.geometry={geometry}")
    ensemble = build_model(config, observations)
    assert isinstance(ensemble, PerturbationEnsemble) and len(ensemble.members) == 3
    assert train(ensemble, observations, config.training, progress=False).status == "ok"
    assert torch.equal(
        held_out_predictions(ensemble.members[0], observations), held_out_predictions(single, observations)
    )


def test_an_ensemble_predicts_the_mean_of_its_differently_initialised_members(observations):
    config = ensemble_config(3)
    ensemble = build_model(config, observations)
    first_layers = [m.input.weight.detach().clone() for m in ensemble.members]
    assert not torch.equal(first_layers[0], first_layers[1])
    assert not torch.equal(first_layers[1], first_layers[2])
    result = train(ensemble, observations, config.training, progress=False)
    assert result.status == "ok"
    steps_per_epoch = math.ceil(len(observations.effects()[0]) / config.training.batch_size)
    assert result.optimiser_steps == 3 * config.training.n_epochs * steps_per_epoch
    members = torch.stack([held_out_predictions(m, observations) for m in ensemble.members])
    assert (members[0] - members[1]).abs().max() > 1e-3  # trained apart, so there is something to average
    assert torch.allclose(held_out_predictions(ensemble, observations), members.mean(0), atol=1e-6)
    member_losses = result.history["member_final_loss"]
    assert len(member_losses) == 3
    # the squared error is convex: the mean prediction fits no worse than the members do on average
    assert result.final_loss <= sum(member_losses) / 3 + 1e-7


def test_a_non_finite_gradient_in_a_later_member_stops_the_ensemble_naming_the_member(observations):
    config = ensemble_config(3)
    ensemble = build_model(config, observations)
    ensemble.members[1].sign.weight.register_hook(lambda grad: grad * float("nan"))
    result = train(ensemble, observations, config.training, progress=False)
    assert result.status == "failed: diverged"
    assert result.message == "ensemble member 1: gradient of sign.weight is non-finite at step 0"
    assert result.final_loss is None
    assert len(result.history["member_final_loss"]) == 1  # member 0 finished; member 2 never started


def test_an_ensemble_run_is_recorded_and_re_scored_from_its_saved_members(cache, tmp_path):
    out = tmp_path / "run"
    metrics = gnnlab.run(ensemble_config(2), out, cache_dir=cache, progress=False)
    assert metrics["status"] == "ok"
    assert {"top20_pearson", "edge_auroc", "embedding_depth_spearman"} <= metrics.keys()
    assert json.loads((out / "history.json").read_text())["member_final_loss"]
    assert gnnlab.evaluate(out, cache_dir=cache, plots=False) == metrics
