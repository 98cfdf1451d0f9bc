"""Shared fixtures: a small metabolism system that simulates quickly and trains in seconds."""

from pathlib import Path

import pytest

from gnnlab.config import Config, load_config

SMALL = [  # four runs: three to train on, one held out
    "simulation.n_metabolites=20",
    "simulation.n_reactions=30",
    "simulation.n_frames=800",
    "simulation.n_runs=4",
    "training.data_augmentation_loop=150",
    "training.lbfgs_iterations=100",
    "training.n_threads=2",
]

TINY_TRAINING = ["training.data_augmentation_loop=5", "training.lbfgs_iterations=5"]


@pytest.fixture
def small_config() -> Config:
    """Big enough that every rate constant is identifiable and recoverable; small enough for CI."""
    return load_config(None, SMALL)


@pytest.fixture
def tiny_config() -> Config:
    """The small system with a few optimiser steps: for plumbing tests, not for accuracy."""
    return load_config(None, SMALL + TINY_TRAINING)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"
