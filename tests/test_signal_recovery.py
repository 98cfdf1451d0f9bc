"""The signal system end to end through ``gnnlab run``, and the issue's small-network recovery target."""

import json
import time
from pathlib import Path

import gnnlab
from gnnlab.config import load_config

RUN_FILES = ["config.yaml", "run.json", "metrics.json", "analysis.log", "history.json", "model.pt"]
PLOTS = ["W_scatter.png", "functions.png", "embeddings.png", "kinograph.png", "loss.png"]


def test_shipped_config_is_the_built_in_default():
    shipped = Path(__file__).parents[1] / "configs" / "signal.yaml"
    assert load_config(shipped) == load_config(None, ["system=signal"])


def test_run_writes_the_record_metrics_and_plots(signal_config, cache, tmp_path):
    metrics = gnnlab.run(signal_config, tmp_path / "run", cache_dir=cache, progress=False)
    for name in RUN_FILES:
        assert (tmp_path / "run" / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "run" / "plots").iterdir()) == sorted(PLOTS)
    for key in (
        "connectivity_R2",
        "connectivity_pearson_R2",
        "connectivity_sign_accuracy",
        "decay_R2",
        "self_recurrence_R2",
        "cluster_accuracy",
        "cluster_accuracy_embedding",
        "effective_rank",
        "test_R2",
        "test_pearson",
        "test_R2_short",
        "val_loss",
        "final_loss",
        "training_time_min",
    ):
        assert key in metrics, key
    assert 0.0 <= metrics["connectivity_sign_accuracy"] <= 1.0
    assert 0.5 <= metrics["cluster_accuracy"] <= 1.0  # two types, Hungarian-matched: never below chance
    assert 1 <= metrics["effective_rank"] <= 20
    assert json.loads((tmp_path / "run" / "run.json").read_text())["system"] == "signal"


def test_30_neuron_network_is_recovered_within_a_minute(cache, tmp_path):
    config = load_config(
        Path(__file__).parents[1] / "configs" / "signal.yaml",
        ["simulation.n_neurons=30", "simulation.n_frames=2000"],
    )
    start = time.perf_counter()
    metrics = gnnlab.run(config, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    print(
        f"30 neurons: connectivity_R2 {metrics['connectivity_R2']:.4f} in {time.perf_counter() - start:.0f} s"
    )
    assert metrics["connectivity_R2"] >= 0.95
