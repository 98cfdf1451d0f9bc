"""Datasets on disk: simulate once, cache by the simulation config's hash, load observations.

A dataset directory holds ``observations.npz`` and ``ground_truth.npz`` as separate files, plus the
``simulation.yaml`` that produced them. This module writes both but reads back only observations; reading
ground truth is the evaluation layer's job (:func:`gnnlab.evaluation.ground_truth.load_ground_truth`).
"""

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import TypeVar

import numpy as np
import yaml

from gnnlab.config import Config, simulation_hash
from gnnlab.errors import DataError
from gnnlab.systems import Observations, Record, get_system

R = TypeVar("R", bound=Record)

OBSERVATIONS_FILE = "observations.npz"
GROUND_TRUTH_FILE = "ground_truth.npz"
SIMULATION_FILE = "simulation.yaml"


def default_cache_dir() -> Path:
    """``$GNNLAB_CACHE`` if set, else ``~/.cache/gnnlab``."""
    return Path(os.environ.get("GNNLAB_CACHE", Path.home() / ".cache" / "gnnlab"))


def dataset_dir(config: Config, cache_dir: Path | None = None) -> Path:
    """Where the dataset of ``config`` lives: ``<cache>/<system>-<hash of simulation section>``."""
    return Path(cache_dir or default_cache_dir()) / f"{config.system}-{simulation_hash(config)}"


def save_record(record: Record, path: Path) -> None:
    np.savez(path, **record.arrays())


def load_record(record_type: type[R], path: Path) -> R:
    """Read a record written by :func:`save_record`, checking every field is present."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with np.load(path, allow_pickle=False) as archive:
        missing = [f.name for f in dataclasses.fields(record_type) if f.name not in archive]
        if missing:
            raise DataError(f"{path}: missing arrays {', '.join(missing)}")
        values = {f.name: archive[f.name] for f in dataclasses.fields(record_type)}
    values = {k: (v.item() if v.ndim == 0 else v) for k, v in values.items()}
    return record_type(**values)


def simulate_cached(config: Config, cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """Simulate the dataset of ``config`` unless it is already cached; return its directory.

    The dataset is written to a temporary sibling and renamed into place, so an interrupted simulation never
    leaves a half-written dataset that later runs would trust.
    """
    target = dataset_dir(config, cache_dir)
    if (target / OBSERVATIONS_FILE).is_file() and (target / GROUND_TRUTH_FILE).is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    observations, truth = get_system(config.system).simulate(config.simulation)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save_record(observations, staging / OBSERVATIONS_FILE)
        save_record(truth, staging / GROUND_TRUTH_FILE)
        sim = {"system": config.system, "simulation": config.simulation.model_dump(mode="json")}
        (staging / SIMULATION_FILE).write_text(yaml.safe_dump(sim, sort_keys=False))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_observations(directory: Path, system: str) -> Observations:
    """The observations of a dataset directory (never its ground truth)."""
    return load_record(get_system(system).observations_type, Path(directory) / OBSERVATIONS_FILE)
