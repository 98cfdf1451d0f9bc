r"""Metabolic network dynamics: mass action plus per-type homeostasis, integrated by explicit Euler.

.. math::
    \frac{dc_i}{dt} = \sum_j S_{ij}\, k_j \prod_{k \in \mathrm{sub}(j)} c_k^{r_{kj}}
                      - \lambda_{t(i)} (c_i - c^{base}_{t(i)}) + u_i(t)

``r_kj`` are the substrate coefficients, ``S`` the net stoichiometry, ``t(i)`` the hidden type of metabolite
i and ``u`` a known external input. States are clamped at zero after every step.
"""

import dataclasses
from typing import Literal

import numpy as np

from gnnlab.config.metabolism import MetabolismSimulation
from gnnlab.systems._base import Frames, GroundTruth, Observations, System
from gnnlab.systems.metabolism.network import Network, random_network


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
        """Pairs (c_t, dc/dt_t) of the chosen runs. A target whose next reading is exactly zero is censored:
        the clamp at zero hid the true derivative, so it is masked rather than fitted."""
        n_train = self.n_training_runs
        runs = slice(0, n_train) if split == "train" else slice(n_train, None)
        states = self.concentrations[runs, :-1]
        n_met = self.n_metabolites
        return Frames(
            states=states.reshape(-1, n_met),
            inputs=self.inputs[runs, :-1].reshape(-1, n_met),
            targets=self.derivatives[runs].reshape(-1, n_met),
            mask=(self.concentrations[runs, 1:] > 0).reshape(-1, n_met).astype(np.float32),
        )

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


class MassAction:
    """Mass-action kinetics of a fixed network: v_j = k_j prod_k c_k^{r_kj}.

    The substrate table is built once, so evaluating rates is two array operations per call.
    """

    def __init__(self, network: Network):
        self.network = network
        reactants = network.reactants
        n_met, n_rxn = reactants.shape
        width = max(1, int((reactants > 0).sum(axis=0).max()))
        self._index = np.full((n_rxn, width), n_met)  # padding points at an appended constant 1
        self._order = np.zeros((n_rxn, width))
        for j in range(n_rxn):
            (subs,) = np.nonzero(reactants[:, j])
            self._index[j, : len(subs)], self._order[j, : len(subs)] = subs, reactants[subs, j]

    def unit_rates(self, concentrations: np.ndarray) -> np.ndarray:
        """phi_j = prod_k c_k^{r_kj} (the rates with every k = 1) for concentrations (..., N) -> (..., R)."""
        padded = np.concatenate([concentrations, np.ones(concentrations.shape[:-1] + (1,))], axis=-1)
        return np.prod(padded[..., self._index] ** self._order, axis=-1)

    def vector_field(self, concentrations: np.ndarray, truth: MetabolismGroundTruth) -> np.ndarray:
        """The true dc/dt without external input, for concentrations of shape (..., N)."""
        rates = self.unit_rates(concentrations) * 10.0**truth.log_k
        homeostasis = -truth.homeostatic_lambda * (concentrations - truth.homeostatic_baseline)
        return rates @ self.network.stoichiometry.T + homeostasis


def _external_input(config: MetabolismSimulation, rng: np.random.Generator) -> np.ndarray:
    """u (n_runs, T, N): sines of random phase on ``n_input_metabolites`` random metabolites."""
    shape = (config.n_runs, config.n_frames, config.n_metabolites)
    inputs = np.zeros(shape)
    if config.external_input_type == "sine" and config.n_input_metabolites > 0:
        driven = rng.choice(config.n_metabolites, size=config.n_input_metabolites, replace=False)
        phase = rng.uniform(0.0, 2 * np.pi, size=(config.n_runs, 1, config.n_input_metabolites))
        t = (np.arange(config.n_frames) * config.delta_t)[None, :, None]
        inputs[:, :, driven] = config.external_input_amplitude * np.sin(
            2 * np.pi * t / config.external_input_period + phase
        )
    return inputs


class MetabolismSystem(System):
    """Bipartite metabolite/reaction network with mass-action kinetics and homeostasis."""

    name = "metabolism"
    simulation_config = MetabolismSimulation
    observations_type = MetabolismObservations
    ground_truth_type = MetabolismGroundTruth

    def simulate(self, config: MetabolismSimulation) -> tuple[MetabolismObservations, MetabolismGroundTruth]:
        """Draw network, parameters and ``n_runs`` Euler trajectories from ``config.seed`` (one stream)."""
        rng = np.random.default_rng(config.seed)
        network = random_network(config, rng)
        n_met, n_types = config.n_metabolites, config.n_metabolite_types
        log_k = rng.uniform(config.log_k_min, config.log_k_max, size=config.n_reactions)
        types = rng.permutation(np.arange(n_met) % n_types)
        lam = np.asarray(config.homeostatic_lambda_per_type)[types]
        base = np.asarray(config.homeostatic_baseline_per_type)[types]
        inputs = _external_input(config, rng)
        truth_params = MetabolismGroundTruth(log_k, types, lam, base, clean_concentrations=np.empty(0))

        states = np.empty((config.n_runs, config.n_frames, n_met))
        c = rng.uniform(config.concentration_min, config.concentration_max, size=(config.n_runs, n_met))
        kinetics = MassAction(network)
        for t in range(config.n_frames):
            states[:, t] = c
            step = config.delta_t * (kinetics.vector_field(c, truth_params) + inputs[:, t])
            if config.noise_model_level > 0:
                step += config.noise_model_level * rng.standard_normal(c.shape)
            c = np.maximum(c + step, 0.0)

        measured = states
        if config.measurement_noise_level > 0:
            measured = np.maximum(
                states + config.measurement_noise_level * rng.standard_normal(states.shape), 0.0
            )
        observations = MetabolismObservations(
            concentrations=measured.astype(np.float32),
            derivatives=(np.diff(measured, axis=1) / config.delta_t).astype(np.float32),
            inputs=inputs.astype(np.float32),
            reactants=network.reactants,
            stoichiometry=network.stoichiometry,
            delta_t=config.delta_t,
            n_validation_runs=config.n_validation_runs,
        )
        truth = dataclasses.replace(truth_params, clean_concentrations=states)
        return observations, truth
