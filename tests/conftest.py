"""Shared fixtures: small metabolism and perturbation systems that simulate quickly and train in seconds."""

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


PERTURBATION_TINY = [  # 63 genes, 24 knock-downs (6 held out): simulates in well under a second
    "system=perturbation",
    "simulation.n_genes=63",
    "simulation.n_perturbations=24",
    "simulation.n_heldout_perturbations=6",
    "simulation.n_cells_per_perturbation=40",
    "simulation.n_control_cells=200",
    "training.n_epochs=40",
    "training.batch_size=6",
    "training.n_threads=1",
]


@pytest.fixture
def perturbation_config() -> Config:
    return load_config(None, PERTURBATION_TINY)


SIGNAL_TINY = [  # 20 neurons in two types, 400 frames: simulates in milliseconds
    "system=signal",
    "simulation.n_neurons=20",
    "simulation.n_neuron_types=2",
    "simulation.decay_per_type=[1.0, 2.0]",
    "simulation.baseline_per_type=[0.0, 0.0]",
    "simulation.self_recurrence_per_type=[0.0, 0.5]",
    "simulation.threshold_per_type=[0.0, 0.0]",
    "simulation.width_per_type=[1.0, 1.0]",
    "simulation.n_frames=400",
    "training.data_augmentation_loop=5",
    "training.lbfgs_iterations=5",
    "training.n_threads=1",
]


@pytest.fixture
def signal_config() -> Config:
    return load_config(None, SIGNAL_TINY)


FLYVIS_TINY = [  # extent 1: 443 cells, 8,174 edges; a few hundred frames and a few optimiser steps
    "system=flyvis",
    "simulation.extent=1",
    "simulation.n_frames=120",
    "simulation.n_burn_in_frames=10",
    "simulation.n_test_frames=60",
    "training.projection_steps=4",
    "training.projection_batch_frames=100",
    "training.lbfgs_iterations=3",
    "training.n_threads=1",
]


@pytest.fixture
def flyvis_config() -> Config:
    return load_config(None, FLYVIS_TINY)
