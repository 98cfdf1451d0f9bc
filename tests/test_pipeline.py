"""gnnlab.run writes a complete, reproducible run record, resumes, and records failures as data."""

import json
import math
from pathlib import Path

import pytest
import torch

import gnnlab
from gnnlab.cli import main
from gnnlab.config import load_config
from gnnlab.errors import ConfigError
from gnnlab.pipeline import write_metrics

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_benchmark_config_equals_the_built_in_defaults():
    assert load_config(ROOT / "configs" / "metabolism.yaml") == load_config(None)


def test_run_writes_the_run_record(tiny_config, cache, tmp_path):
    out = tmp_path / "run"
    metrics = gnnlab.run(tiny_config, out, cache_dir=cache, progress=False)
    for name in ("config.yaml", "run.json", "metrics.json", "analysis.log", "history.json", "model.pt"):
        assert (out / name).is_file(), name
    plots = {p.name for p in (out / "plots").glob("*.png")}
    assert plots == {
        "rate_constants.png",
        "substrate_function.png",
        "MLP_node.png",
        "embedding.png",
        "loss.png",
        "kinograph.png",
    }
    assert load_config(out / "config.yaml") == tiny_config
    assert json.loads((out / "metrics.json").read_text()) == metrics
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "ok"
    assert record["training_seed"] == tiny_config.training.seed
    assert record["simulation_seed"] == tiny_config.simulation.seed
    assert record["code_revision"]


def test_analysis_log_has_one_key_value_line_per_metric(tiny_config, cache, tmp_path):
    metrics = gnnlab.run(tiny_config, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    lines = (tmp_path / "run" / "analysis.log").read_text().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == list(metrics)
    for key in (
        "rate_constants_R2",
        "rate_constants_pearson_R2",
        "n_outliers",
        "n_identifiable",
        "avg_slope_ratio",
        "MLP_node_slope_0",
        "MLP_node_slope_ratio_1",
        "embedding_cluster_acc",
        "embedding_n_clusters",
        "embedding_silhouette",
        "test_R2",
        "test_pearson",
        "val_loss",
        "final_loss",
        "training_time_min",
    ):
        assert key in metrics, key


def test_same_config_and_seed_reproduce_the_same_metrics(tiny_config, cache, tmp_path):
    first = gnnlab.run(tiny_config, tmp_path / "a", cache_dir=cache, progress=False, plots=False)
    second = gnnlab.run(tiny_config, tmp_path / "b", cache_dir=cache, progress=False, plots=False)
    timing = {"training_time_min", "frames_per_second"}
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in second.items() if k not in timing
    }


def test_training_seed_changes_the_initialisation(tiny_config, cache, tmp_path):
    gnnlab.run(tiny_config, tmp_path / "a", cache_dir=cache, progress=False, plots=False)
    gnnlab.run(
        tiny_config,
        tmp_path / "b",
        overrides=["training.seed=1"],
        cache_dir=cache,
        progress=False,
        plots=False,
    )
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert not torch.equal(a["embedding"], b["embedding"])


def test_rerun_into_a_finished_run_returns_its_metrics_without_training(
    tiny_config, cache, tmp_path, monkeypatch
):
    first = gnnlab.run(tiny_config, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    monkeypatch.setattr(
        "gnnlab.pipeline.train_model", lambda *a, **k: pytest.fail("retrained a finished run")
    )
    assert gnnlab.run(tiny_config, tmp_path / "run", cache_dir=cache, progress=False, plots=False) == first


def test_a_run_directory_holding_another_config_is_refused(tiny_config, cache, tmp_path):
    gnnlab.run(tiny_config, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    before = (tmp_path / "run" / "metrics.json").read_text()
    with pytest.raises(ConfigError, match="different config"):
        gnnlab.run(
            tiny_config, tmp_path / "run", overrides=["training.seed=5"], cache_dir=cache, progress=False
        )
    assert (tmp_path / "run" / "metrics.json").read_text() == before


def test_a_diverging_run_is_recorded_as_failed_without_nan_metrics(tiny_config, cache, tmp_path):
    out = tmp_path / "run"
    metrics = gnnlab.run(tiny_config, out, overrides=["model.log_k_init=60"], cache_dir=cache, progress=False)
    assert metrics["status"] == "failed: diverged"
    assert "Adam step 0" in metrics["message"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["status"] == "failed: diverged"
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in saved.values())
    assert "rate_constants_R2" not in saved
    assert (out / "analysis.log").read_text().startswith("status: failed: diverged\n")
    assert json.loads((out / "run.json").read_text())["status"] == "failed: diverged"


def test_non_finite_numbers_are_written_as_null_so_run_files_stay_strict_json(tmp_path):
    returned = write_metrics(tmp_path, {"val_loss": math.inf, "test_R2": math.nan, "final_loss": 0.5})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {
        "val_loss": None,
        "test_R2": None,
        "final_loss": 0.5,
    }
    assert returned == {"val_loss": None, "test_R2": None, "final_loss": 0.5}
    assert "val_loss: inf\n" in (tmp_path / "analysis.log").read_text()


def test_cli_run_exits_nonzero_with_one_line_on_divergence(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "simulation: {n_metabolites: 20, n_reactions: 30, n_frames: 200}\nmodel: {log_k_init: 60}\n"
    )
    code = main(
        [
            "run",
            str(config),
            "--out",
            str(tmp_path / "run"),
            "--cache",
            str(tmp_path / "c"),
            "--quiet",
            "--no-plots",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "failed: diverged" in err[0]


def test_evaluate_rescores_a_finished_run_identically(tiny_config, cache, tmp_path):
    metrics = gnnlab.run(tiny_config, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    again = gnnlab.evaluate(tmp_path / "run", cache_dir=cache, plots=False)
    assert again == metrics


def test_evaluate_resimulates_a_missing_dataset_from_the_recorded_config(tiny_config, cache, tmp_path):
    metrics = gnnlab.run(tiny_config, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    again = gnnlab.evaluate(tmp_path / "run", cache_dir=tmp_path / "fresh-cache", plots=False)
    assert again["rate_constants_R2"] == metrics["rate_constants_R2"]
