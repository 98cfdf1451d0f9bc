r"""Metabolic network dynamics: mass action plus per-type homeostasis (integrators: :mod:`.integrators`).

.. math::
    \frac{dc_i}{dt} = \sum_j S_{ij}\, k_j \prod_{k \in \mathrm{sub}(j)} c_k^{r_{kj}}
                      - \lambda_{t(i)} (c_i - c^{base}_{t(i)}) + u_i(t)

``r_kj`` are the substrate coefficients, ``S`` the net stoichiometry, ``t(i)`` the hidden type of metabolite
i and ``u`` a known external input. States stay non-negative without a mass-creating clamp (see
:mod:`.integrators`); a trajectory that blows up raises :class:`~gnnlab.errors.SimulationDiverged`.
"""

import dataclasses
from typing import Literal

import numpy as np

from gnnlab.config.metabolism import MetabolismSimulation
from gnnlab.systems._base import Frames, GroundTruth, Observations, System
from gnnlab.systems.metabolism.integrators import InputFn, Kinetics, integrate
from gnnlab.systems.metabolism.network import random_network


@dataclasses.dataclass(frozen=True)
class MetabolismObservations(Observations):
    """What an experimenter has: measured concentrations, their forward differences, the applied input,
    and the reaction equations. Run r is for validation when ``r >= n_runs - n_validation_runs``."""

    concentrations: np.ndarray  # (n_runs, T, N) float32, possibly with measurement noise
    derivatives: np.ndarray  # (n_runs, T-1, N) float32, (c[t+1] - c[t]) / delta_t
    inputs: np.ndarray  # (n_runs, T, N) float32, external input u(t) (zeros when none)
    reactants: np.ndarray  # (N, R) int, substrate coefficients
    stoichiometry: np.ndarray  # (N, R) int, net stoichiometry
    delta_t: float
    n_validation_runs: int

    def frames(self, split: Literal["train", "validation"]) -> Frames:
        """Pairs (c_t, dc/dt_t) of the chosen runs, masked where a zero reading hides the derivative.

        A pool read as zero at t+1 was censored (a clamped noisy reading) or emptied during the step; an
        emptied pool slowed every reaction consuming it, and so every metabolite of those reactions. From the
        readings and the known stoichiometry alone, those targets are masked rather than fitted.
        """
        n_train = self.n_training_runs
        runs = slice(0, n_train) if split == "train" else slice(n_train, None)
        n_met = self.n_metabolites
        empty = (self.concentrations[runs, 1:] == 0).reshape(-1, n_met).astype(np.float32)
        slowed = (empty @ (self.stoichiometry < 0)) > 0  # (F, R) reactions consuming an empty pool
        touched = (slowed.astype(np.float32) @ (self.stoichiometry != 0).T) > 0
        return Frames(
            states=self.concentrations[runs, :-1].reshape(-1, n_met),
            inputs=self.inputs[runs, :-1].reshape(-1, n_met),
            targets=self.derivatives[runs].reshape(-1, n_met),
            mask=((empty == 0) & ~touched).astype(np.float32),
        )

    def trajectories(self, split: Literal["train", "validation"]) -> tuple[np.ndarray, np.ndarray]:
        """Readings and inputs (runs, T, N) of the chosen runs, for objectives that fit whole trajectories."""
        runs = slice(0, self.n_training_runs) if split == "train" else slice(self.n_training_runs, None)
        return self.concentrations[runs], self.inputs[runs]

    @property
    def n_metabolites(self) -> int:
        return self.stoichiometry.shape[0]

    @property
    def n_reactions(self) -> int:
        return self.stoichiometry.shape[1]

    @property
    def n_training_runs(self) -> int:
        return self.concentrations.shape[0] - self.n_validation_runs


@dataclasses.dataclass(frozen=True)
class MetabolismGroundTruth(GroundTruth):
    """What the model must recover and may never see."""

    log_k: np.ndarray  # (R,) log10 rate constants
    metabolite_types: np.ndarray  # (N,) int
    homeostatic_lambda: np.ndarray  # (N,) per-metabolite lambda_t(i)
    homeostatic_baseline: np.ndarray  # (N,) per-metabolite c_base,t(i)
    clean_concentrations: np.ndarray  # (n_runs, T, N) states before measurement noise


def _external_input(config: MetabolismSimulation, rng: np.random.Generator) -> InputFn:
    """u(t) (n_runs, N): sines of random phase on ``n_input_metabolites`` random metabolites, zero elsewhere.

    A function of continuous time, so an adaptive integrator sees the input the frames sample."""
    n_driven = config.n_input_metabolites if config.external_input_type == "sine" else 0
    driven = rng.choice(config.n_metabolites, size=n_driven, replace=False) if n_driven else np.empty(0, int)
    phase = rng.uniform(0.0, 2 * np.pi, size=(config.n_runs, n_driven)) if n_driven else None

    def input_at(t: float) -> np.ndarray:
        u = np.zeros((config.n_runs, config.n_metabolites))
        if n_driven:
            omega = 2 * np.pi / config.external_input_period
            u[:, driven] = config.external_input_amplitude * np.sin(omega * t + phase)
        return u

    return input_at


def _measure(config: MetabolismSimulation, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Readings of the states: a sensor reads no negative amount, then measurement noise.

    Absolute noise adds ``level * N(0, 1)`` and censors at zero. Relative noise multiplies by
    ``exp(s Z - s^2 / 2)`` with ``s^2 = ln(1 + level^2)``: a mean-one log-normal factor whose coefficient of
    variation is exactly ``level``; it never makes a reading negative.
    """
    readings = np.maximum(states, 0.0)
    level = config.measurement_noise_level
    if level == 0:
        return readings
    noise = rng.standard_normal(states.shape)
    if config.measurement_noise_type == "relative":
        s = np.sqrt(np.log1p(level**2))
        return readings * np.exp(s * noise - 0.5 * s**2)
    return np.maximum(readings + level * noise, 0.0)


class MetabolismSystem(System):
    """Bipartite metabolite/reaction network with mass-action kinetics and homeostasis."""

    name = "metabolism"
    simulation_config = MetabolismSimulation
    observations_type = MetabolismObservations
    ground_truth_type = MetabolismGroundTruth

    def simulate(self, config: MetabolismSimulation) -> tuple[MetabolismObservations, MetabolismGroundTruth]:
        """Draw network, parameters and ``n_runs`` trajectories from ``config.seed`` (one stream); raise
        :class:`~gnnlab.errors.SimulationDiverged` at the first non-finite or exploding state."""
        rng = np.random.default_rng(config.seed)
        network = random_network(config, rng)
        n_met, n_types = config.n_metabolites, config.n_metabolite_types
        log_k = rng.uniform(config.log_k_min, config.log_k_max, size=config.n_reactions)
        types = rng.permutation(np.arange(n_met) % n_types)
        lam = np.asarray(config.homeostatic_lambda_per_type)[types]
        base = np.asarray(config.homeostatic_baseline_per_type)[types]
        input_at = _external_input(config, rng)

        c0 = rng.uniform(config.concentration_min, config.concentration_max, size=(config.n_runs, n_met))
        states = integrate(config, Kinetics(network, log_k, lam, base), c0, input_at, rng)
        measured = _measure(config, states, rng)
        inputs = np.stack([input_at(t * config.delta_t) for t in range(config.n_frames)], axis=1)
        observations = MetabolismObservations(
            concentrations=measured.astype(np.float32),
            derivatives=(np.diff(measured, axis=1) / config.delta_t).astype(np.float32),
            inputs=inputs.astype(np.float32),
            reactants=network.reactants,
            stoichiometry=network.stoichiometry,
            delta_t=config.delta_t,
            n_validation_runs=config.n_validation_runs,
        )
        return observations, MetabolismGroundTruth(log_k, types, lam, base, clean_concentrations=states)
