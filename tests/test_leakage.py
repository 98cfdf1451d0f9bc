"""Ground truth must be unreachable from training: the lesson of 104 iterations lost to a loss that read
the true type labels. These tests make that a property of the code, not a promise."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import gnnlab
from gnnlab import data
from gnnlab.data import GROUND_TRUTH_FILE
from gnnlab.pipeline import train_model

SRC = Path(gnnlab.__file__).parent


# each system's tiny config fixture, and the ground-truth arrays the leakage tests overwrite
SYSTEM_FIXTURES = ["tiny_config", "perturbation_config", "signal_config", "flyvis_config"]


def assert_same_model(run: Path, other: Path) -> None:
    """Every tensor of the two runs' saved models is bit-identical."""
    original = torch.load(run / "model.pt", weights_only=True)
    again = torch.load(other / "model.pt", weights_only=True)
    assert original.keys() == again.keys()
    for name in original:
        assert torch.equal(original[name], again[name]), name


@pytest.mark.parametrize("fixture", SYSTEM_FIXTURES)
def test_training_completes_when_ground_truth_cannot_be_loaded(fixture, request, cache, monkeypatch):
    config = request.getfixturevalue(fixture)
    dataset = data.simulate_cached(config, cache)
    (dataset / GROUND_TRUTH_FILE).unlink()
    real_load = np.load

    def guarded_load(path, *args, **kwargs):
        if "ground_truth" in str(path):
            raise AssertionError(f"training tried to read ground truth: {path}")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", guarded_load)
    monkeypatch.setattr("gnnlab.evaluation.ground_truth.load_ground_truth", _forbidden)
    observations = data.load_observations(dataset, config.system)
    _, result = train_model(config, observations, progress=False)
    assert result.status == "ok"
    assert len(result.history["loss"]) > 0


def _forbidden(*args, **kwargs):
    raise AssertionError("ground truth loader called during training")


def test_permuting_hidden_type_labels_leaves_the_trained_model_identical(tiny_config, cache, tmp_path):
    gnnlab.run(tiny_config, tmp_path / "original", cache_dir=cache, progress=False, plots=False)
    dataset = data.dataset_dir(tiny_config, cache)
    with np.load(dataset / GROUND_TRUTH_FILE) as archive:
        truth = dict(archive)
    permuted = np.random.default_rng(0).permutation(truth["metabolite_types"])
    assert not np.array_equal(permuted, truth["metabolite_types"])
    truth["metabolite_types"] = permuted
    np.savez(dataset / GROUND_TRUTH_FILE, **truth)

    gnnlab.run(tiny_config, tmp_path / "permuted", cache_dir=cache, progress=False, plots=False)
    assert_same_model(tmp_path / "original", tmp_path / "permuted")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "module",
    [
        "training/__init__.py",
        "training/perturbation.py",
        "training/homeostasis.py",
        "data.py",
        "models/__init__.py",
        "models/_base.py",
        "models/metabolism.py",
        "models/perturbation.py",
        "models/signal.py",
        "models/flyvis.py",
        "training/flyvis.py",
    ],
)
def test_training_side_modules_import_no_evaluation_code(module):
    imported = _imports(SRC / module)
    assert not any(name.startswith("gnnlab.evaluation") for name in imported), imported


def test_only_the_evaluation_layer_reads_ground_truth_files():
    read_call = re.compile(r"load_record\(.*GROUND_TRUTH_FILE")
    readers = [
        path.relative_to(SRC).as_posix() for path in SRC.rglob("*.py") if read_call.search(path.read_text())
    ]
    assert readers == ["evaluation/ground_truth.py"]


def test_observation_records_hold_no_hidden_fields(tiny_config, cache):
    observations = data.load_observations(data.simulate_cached(tiny_config, cache), tiny_config.system)
    hidden = {
        "log_k",
        "metabolite_types",
        "homeostatic_lambda",
        "homeostatic_baseline",
        "clean_concentrations",
    }
    assert hidden.isdisjoint(observations.arrays())


def test_overwriting_the_true_effects_leaves_the_trained_perturbation_model_identical(
    perturbation_config, cache, tmp_path
):
    gnnlab.run(perturbation_config, tmp_path / "original", cache_dir=cache, progress=False, plots=False)
    dataset = data.dataset_dir(perturbation_config, cache)
    with np.load(dataset / GROUND_TRUTH_FILE) as archive:
        truth = dict(archive)
    truth["effects"] = np.random.default_rng(0).normal(size=truth["effects"].shape).astype(np.float32)
    truth["edge_sign"] = -truth["edge_sign"]
    np.savez(dataset / GROUND_TRUTH_FILE, **truth)

    gnnlab.run(perturbation_config, tmp_path / "changed", cache_dir=cache, progress=False, plots=False)
    assert_same_model(tmp_path / "original", tmp_path / "changed")


def test_changing_the_hidden_signal_network_leaves_the_trained_model_identical(
    signal_config, cache, tmp_path
):
    gnnlab.run(signal_config, tmp_path / "original", cache_dir=cache, progress=False, plots=False)
    dataset = data.dataset_dir(signal_config, cache)
    with np.load(dataset / GROUND_TRUTH_FILE) as archive:
        truth = dict(archive)
    truth["types"] = 1 - truth["types"]
    truth["W"] = -truth["W"]
    truth["gain"] = 2 * truth["gain"]
    np.savez(dataset / GROUND_TRUTH_FILE, **truth)

    changed = gnnlab.run(signal_config, tmp_path / "changed", cache_dir=cache, progress=False, plots=False)
    assert_same_model(tmp_path / "original", tmp_path / "changed")
    assert (
        changed["connectivity_R2"]
        != json.loads((tmp_path / "original" / "metrics.json").read_text())["connectivity_R2"]
    )  # the evaluation did read the changed truth


def test_signal_observations_hold_no_hidden_fields(signal_config, cache):
    observations = data.load_observations(data.simulate_cached(signal_config, cache), "signal")
    hidden = {"W", "gain", "types", "decay", "baseline", "self_recurrence", "threshold", "width"}
    assert hidden.isdisjoint(observations.arrays())
    assert "clean_activity" not in observations.arrays()


def test_perturbation_observations_hold_no_hidden_fields_and_no_held_out_cells(perturbation_config, cache):
    observations = data.load_observations(data.simulate_cached(perturbation_config, cache), "perturbation")
    hidden = {"effects", "perturbations", "edge_index", "edge_sign", "edge_weight", "depth"}
    assert hidden.isdisjoint(observations.arrays())
    assert set(observations.heldout_perturbations).isdisjoint(set(observations.perturbation))


def test_changing_the_hidden_flyvis_parameters_leaves_the_trained_model_identical(
    flyvis_config, cache, tmp_path
):
    gnnlab.run(flyvis_config, tmp_path / "original", cache_dir=cache, progress=False, plots=False)
    dataset = data.dataset_dir(flyvis_config, cache)
    with np.load(dataset / GROUND_TRUTH_FILE) as archive:
        truth = dict(archive)
    truth["W"] = -truth["W"]
    truth["tau"] = truth["tau"][::-1].copy()
    truth["cell_types"] = np.random.default_rng(0).permutation(truth["cell_types"])
    truth["clean_test_activity"] = np.zeros_like(truth["clean_test_activity"])
    np.savez(dataset / GROUND_TRUTH_FILE, **truth)

    gnnlab.run(flyvis_config, tmp_path / "changed", cache_dir=cache, progress=False, plots=False)
    assert_same_model(tmp_path / "original", tmp_path / "changed")
