"""The three steps as functions — simulate, train, evaluate — and :func:`run`, which chains them into a run
record on disk. The CLI only wraps these; the exploration loop can call :func:`run` in another process.

A run directory holds::

    config.yaml    the resolved config (every default written out)
    run.json       status, seeds, hashes, code revision, timings, training summary
    metrics.json   flat metrics (or the failure status)
    analysis.log   the metrics as ``key: value`` lines
    history.json   loss curves
    model.pt       trained parameters (state dict)
    plots/*.png    figures
"""

import datetime
import json
import math
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gnnlab import data
from gnnlab._version import __version__
from gnnlab.config import (
    Config,
    apply_overrides,
    config_to_dict,
    dump_config,
    load_config,
    parse_config,
    simulation_hash,
)
from gnnlab.errors import ConfigError, DataError, SimulationDiverged
from gnnlab.evaluation import evaluate as score
from gnnlab.evaluation import load_ground_truth
from gnnlab.evaluation import plot as draw
from gnnlab.models import build_model, count_parameters
from gnnlab.systems import Observations
from gnnlab.training import TRAINERS, homeostasis


def resolve_config(config: Config | str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Accept a config object, a YAML path or None (built-in defaults), then apply overrides."""
    if config is None or isinstance(config, str | Path):
        return load_config(config, overrides)
    if overrides:
        return parse_config(apply_overrides(config_to_dict(config), overrides, "<config>"), "<config>")
    return config


def simulate(
    config: Config | str | Path | None = None, *, cache_dir: Path | None = None, force: bool = False
) -> Path:
    """Simulate (or reuse) the dataset of ``config``; returns its directory."""
    return data.simulate_cached(resolve_config(config), cache_dir, force=force)


def train_model(
    config: Config, observations: Observations, *, progress: bool = True
) -> tuple[nn.Module, Any]:
    """Build the model from ``config.training.seed`` and fit it with its system's trainer; with
    ``training.homeostasis_training`` (metabolism) phase 2 follows phase 1, or starts from ``phase1_run``."""
    model = build_model(config, observations)
    training = config.training
    if not getattr(training, "homeostasis_training", False):
        return model, TRAINERS[config.system](model, observations, training, progress=progress)
    if training.skip_phase1:
        phase1_summary, phase1_history = load_phase1(config, model)
    else:
        phase1 = TRAINERS[config.system](model, observations, training, progress=progress)
        if phase1.status != "ok":
            return model, phase1
        phase1_summary, phase1_history = phase1.summary(), phase1.history
    result = homeostasis.train(
        model,
        observations,
        training,
        phase1_summary=phase1_summary,
        phase1_history=phase1_history,
        progress=progress,
    )
    return model, result


PHASE1_SECTIONS = ("system", "simulation", "model")  # what a phase-1 run must share with its phase 2


def load_phase1(config: Config, model: nn.Module) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Load the trained parameters of ``training.phase1_run`` into ``model``; return that run's training
    summary and history. The run must be finished (status ok) on the same simulation and model sections."""
    run_dir = Path(config.training.phase1_run)
    for name in ("config.yaml", "model.pt", "run.json"):
        if not (run_dir / name).is_file():
            raise DataError(f"phase1_run {run_dir}: not a finished run ({name} is missing)")
    phase1_config = config_to_dict(load_config(run_dir / "config.yaml"))
    ours = config_to_dict(config)
    for section in PHASE1_SECTIONS:
        if phase1_config[section] != ours[section]:
            raise ConfigError(
                f"phase1_run {run_dir}: its {section!r} section differs from this config's; phase 2 must "
                "start from a phase-1 run of the same system, simulation and model"
            )
    record = json.loads((run_dir / "run.json").read_text())
    if record["status"] != "ok":
        raise DataError(f"phase1_run {run_dir}: status is {record['status']!r}, not 'ok'")
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    history_file = run_dir / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else {}
    return record["training"], history


def code_revision() -> str:
    """The git commit of the gnnlab source (``+dirty`` if it has uncommitted changes), else the version."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return f"gnnlab {__version__}"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=here, capture_output=True, text=True, timeout=10
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return f"gnnlab {__version__}"


def _finite_or_none(value: Any) -> Any:
    """Replace non-finite floats (at any depth) by None: run files must be strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    return value


def _write_json(path: Path, payload: Any) -> None:
    """Write strict JSON atomically, so an interrupted run never leaves a half-written record."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite_or_none(payload), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json (flat, strict JSON: a non-finite float becomes null) and analysis.log (``key: value``).

    Returns the metrics as metrics.json holds them, so a fresh run and a resumed one answer alike.
    """
    _write_json(out_dir / "metrics.json", metrics)
    (out_dir / "analysis.log").write_text("".join(f"{k}: {_format(v)}\n" for k, v in metrics.items()))
    return _finite_or_none(metrics)


def evaluate(run_dir: str | Path, *, cache_dir: Path | None = None, plots: bool = True) -> dict[str, Any]:
    """(Re-)score a finished run directory against its dataset's ground truth; rewrites metrics and plots."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "model.pt", "run.json"):
        if not (run_dir / name).is_file():
            raise DataError(f"{run_dir}: not a finished run ({name} is missing)")
    config = load_config(run_dir / "config.yaml")
    record = json.loads((run_dir / "run.json").read_text())
    dataset = simulate(config, cache_dir=cache_dir)
    observations = data.load_observations(dataset, config.system)
    model = build_model(config, observations)
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    history = (
        json.loads((run_dir / "history.json").read_text()) if (run_dir / "history.json").is_file() else {}
    )
    return _score_and_write(config, model, observations, dataset, record, history, run_dir, plots=plots)


def _score_and_write(
    config: Config,
    model: nn.Module,
    observations: Observations,
    dataset: Path,
    record: dict[str, Any],
    history: dict[str, list[float]],
    out_dir: Path,
    *,
    plots: bool,
) -> dict[str, Any]:
    truth = load_ground_truth(dataset, config.system)
    training = record["training"]
    metrics: dict[str, Any] = {"status": record["status"]}
    metrics.update(score(config.system, model, observations, truth))
    for key, value in training.items():  # whatever the system's trainer summarised, in its order
        if key == "training_time_s":
            metrics["training_time_min"] = value / 60.0
        elif key not in ("status", "message"):
            metrics[key] = value
    metrics.update(
        {
            "n_parameters": count_parameters(model),
            "training_seed": config.training.seed,
            "simulation_seed": config.simulation.seed,
        }
    )
    written = write_metrics(out_dir, metrics)
    if plots:
        draw(config.system, model, observations, truth, history, out_dir / "plots")
    return written


def _record_failure(
    out_dir: Path, config: Config, status: str, message: str, started: datetime.datetime, wall: float
) -> dict[str, Any]:
    """The record of a run that produced no dataset: the config is already written; add run.json and
    metrics.json with the status, so the failure is on disk like any result."""
    record = {
        "status": status,
        "message": message,
        "system": config.system,
        "training_seed": config.training.seed,
        "simulation_seed": config.simulation.seed,
        "simulation_hash": simulation_hash(config),
        "code_revision": code_revision(),
        "gnnlab_version": __version__,
        "started": started.isoformat(timespec="seconds"),
        "wall_time_s": time.perf_counter() - wall,
    }
    _write_json(out_dir / "run.json", record)
    return write_metrics(out_dir, {"status": status, "message": message})


def run(
    config: Config | str | Path | None,
    out_dir: str | Path,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    cache_dir: Path | None = None,
    progress: bool = True,
    plots: bool = True,
) -> dict[str, Any]:
    """Simulate (or reuse the cache), train, evaluate; write the run record into ``out_dir``; return metrics.

    Resumable: if ``out_dir`` already holds a finished run of the same config, its metrics are returned
    without retraining. A directory holding a different run is refused, so nothing recorded is overwritten.
    A run whose training diverged is recorded with status ``failed: diverged`` and no recovery metrics; one
    whose simulation diverged, with ``failed: simulation diverged`` (and nothing is cached).
    """
    config = resolve_config(config, overrides)
    out_dir = Path(out_dir)
    resolved = dump_config(config)
    if (out_dir / "config.yaml").is_file():
        if (out_dir / "config.yaml").read_text() != resolved:
            raise ConfigError(f"{out_dir}: holds a run of a different config; choose another --out")
        if (out_dir / "metrics.json").is_file():
            return json.loads((out_dir / "metrics.json").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(resolved)

    started = datetime.datetime.now(datetime.UTC)
    wall = time.perf_counter()
    try:
        dataset = simulate(config, cache_dir=cache_dir)
    except SimulationDiverged as exc:
        return _record_failure(out_dir, config, "failed: simulation diverged", str(exc), started, wall)
    observations = data.load_observations(dataset, config.system)
    model, result = train_model(config, observations, progress=progress)
    record = {
        "status": result.status,
        "message": result.message,
        "system": config.system,
        "training_seed": config.training.seed,
        "simulation_seed": config.simulation.seed,
        "simulation_hash": simulation_hash(config),
        "dataset": str(dataset),
        "code_revision": code_revision(),
        "gnnlab_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "started": started.isoformat(timespec="seconds"),
        "training": result.summary(),
    }
    _write_json(out_dir / "history.json", result.history)
    if result.status != "ok":
        record["wall_time_s"] = time.perf_counter() - wall
        _write_json(out_dir / "run.json", record)
        metrics = {
            "status": result.status,
            "message": result.message,
            "training_time_min": result.training_time_s / 60,
        }
        return write_metrics(out_dir, metrics)
    torch.save(model.state_dict(), out_dir / "model.pt")
    metrics = _score_and_write(
        config, model, observations, dataset, record, result.history, out_dir, plots=plots
    )
    record["wall_time_s"] = time.perf_counter() - wall
    _write_json(out_dir / "run.json", record)
    return metrics


__all__ = ["code_revision", "evaluate", "resolve_config", "run", "simulate", "train_model", "write_metrics"]
