r"""Recurrent neural signal propagation with per-type dynamics, integrated by Euler-Maruyama.

.. math::
    \frac{du_i}{dt} = -a_{t(i)} u_i + b_{t(i)} + s_{t(i)} \tanh(u_i)
                      + g \sum_j W_{ij} \tanh\!\left(\frac{u_j - h_{t(j)}}{w_{t(j)}}\right) + e_i(t)

Process noise is a diffusion (std ``noise_model_level * sqrt(dt)`` per substep, so its effect does not
depend on the step size); measurement noise is added to the saved frames only.
"""

import dataclasses
from typing import Literal

import numpy as np

from gnnlab.config.signal import PER_TYPE_KEYS, SignalSimulation
from gnnlab.errors import SimulationDiverged
from gnnlab.systems._base import Frames, GroundTruth, Observations, System


@dataclasses.dataclass(frozen=True)
class SignalObservations(Observations):
    """Measured activity, its forward differences, the applied input and the candidate edges
    (the true support when it is known, otherwise every ordered pair i != j)."""

    activity: np.ndarray  # (n_runs, T, N) float32
    derivatives: np.ndarray  # (n_runs, T-1, N) float32
    inputs: np.ndarray  # (n_runs, T, N) float32
    edge_index: np.ndarray  # (2, E) int64, rows (source j, target i)
    delta_t: float
    n_validation_runs: int

    def frames(self, split: Literal["train", "validation"]) -> Frames:
        """Pairs (u_t, du/dt_t) of the training or held-out runs."""
        n_train = self.activity.shape[0] - self.n_validation_runs
        runs = slice(0, n_train) if split == "train" else slice(n_train, None)
        n = self.activity.shape[2]
        targets = self.derivatives[runs].reshape(-1, n)
        return Frames(
            states=self.activity[runs, :-1].reshape(-1, n),
            inputs=self.inputs[runs, :-1].reshape(-1, n),
            targets=targets,
            mask=np.ones_like(targets),
        )


@dataclasses.dataclass(frozen=True)
class SignalGroundTruth(GroundTruth):
    """Hidden connectivity and gain, neuron types, per-type parameters and the noise-free activity."""

    W: np.ndarray  # (N, N) float64, W[i, j] from j to i
    gain: float  # g: the model can only learn g * W (its gauge), so scoring divides by it
    types: np.ndarray  # (N,) int
    decay: np.ndarray  # (K,)
    baseline: np.ndarray  # (K,)
    self_recurrence: np.ndarray  # (K,)
    threshold: np.ndarray  # (K,)
    width: np.ndarray  # (K,)
    clean_activity: np.ndarray  # (n_runs, T, N) float32


def random_connectivity(config: SignalSimulation, rng: np.random.Generator) -> np.ndarray:
    """W with zero diagonal and the configured density; chaotic W has entries N(0, 1/(N f)) so its
    spectral radius is about 1 (circular law). Low-rank and Dale W are rescaled to radius 1, because
    their non-zero mean or low rank breaks the circular law and the gain ``g`` should mean the same."""
    n, fill = config.n_neurons, config.connectivity_filling_factor
    if config.connectivity_type == "chaotic":
        w = rng.standard_normal((n, n)) / np.sqrt(n * fill)
    else:
        r = config.connectivity_rank
        w = rng.standard_normal((n, r)) @ rng.standard_normal((r, n)) / np.sqrt(n * r)
    support = rng.random((n, n)) < fill
    np.fill_diagonal(support, False)
    w = np.where(support, w, 0.0)
    if config.Dale_law:
        excitatory = rng.random(n) < config.Dale_law_factor
        w = np.abs(w) * np.where(excitatory, 1.0, -1.0)[None, :]
    if config.Dale_law or config.connectivity_type == "low_rank":
        w = w / np.max(np.abs(np.linalg.eigvals(w)))
    return w


def _external_input(config: SignalSimulation, rng: np.random.Generator, n_steps: int) -> np.ndarray:
    """A travelling wave (movie-like moving field) over ``n_input_neurons`` neurons at random positions."""
    inputs = np.zeros((config.n_runs, n_steps, config.n_neurons))
    if config.external_input_type == "additive" and config.n_input_neurons > 0:
        driven = rng.choice(config.n_neurons, size=config.n_input_neurons, replace=False)
        position = rng.uniform(0.0, 1.0, size=config.n_input_neurons)
        phase = rng.uniform(0.0, 2 * np.pi, size=(config.n_runs, 1, 1))
        t = np.arange(n_steps)[None, :, None] * config.delta_t
        inputs[:, :, driven] = config.external_input_amplitude * np.sin(
            2 * np.pi * (position[None, None, :] - 0.5 * t) + phase
        )
    return inputs


class SignalSystem(System):
    """Random recurrent networks of typed neurons (seed 003)."""

    name = "signal"
    simulation_config = SignalSimulation
    observations_type = SignalObservations
    ground_truth_type = SignalGroundTruth

    def simulate(self, config: SignalSimulation) -> tuple[SignalObservations, SignalGroundTruth]:
        """Draw W, types and ``n_runs`` trajectories from ``config.seed`` (one stream); raise
        :class:`SimulationDiverged` at the first non-finite or exploding state."""
        rng = np.random.default_rng(config.seed)
        n, n_types = config.n_neurons, config.n_neuron_types
        w = random_connectivity(config, rng)
        types = rng.permutation(np.arange(n) % n_types)
        a, b, s, h, wd = (np.asarray(getattr(config, key), dtype=float)[types] for key in PER_TYPE_KEYS)
        n_total = config.n_burn_in_frames + config.n_frames
        inputs = _external_input(config, rng, n_total)
        dt = config.delta_t / config.n_substeps
        u = rng.standard_normal((config.n_runs, n))
        clean = np.empty((config.n_runs, n_total, n))
        for frame in range(n_total):
            clean[:, frame] = u
            for _ in range(config.n_substeps):
                drive = np.tanh((u - h) / wd) @ w.T
                du = -a * u + b + s * np.tanh(u) + config.g * drive + inputs[:, frame]
                u = u + dt * du + config.noise_model_level * np.sqrt(dt) * rng.standard_normal(u.shape)
            bad = ~np.isfinite(u) | (np.abs(u) > config.divergence_threshold)
            if bad.any():
                run, node = (int(x) for x in np.argwhere(bad)[0])
                raise SimulationDiverged(
                    f"system 'signal': run {run} diverged at frame {frame + 1 - config.n_burn_in_frames}, "
                    f"node {node} (|u| > {config.divergence_threshold:g} or non-finite); "
                    "lower g or delta_t, or raise n_substeps"
                )
        keep = slice(config.n_burn_in_frames, None)
        clean, inputs = clean[:, keep], inputs[:, keep]
        measured = clean + config.measurement_noise_level * rng.standard_normal(clean.shape)
        if config.known_support:
            target, source = np.nonzero(w)
        else:
            target, source = np.nonzero(~np.eye(n, dtype=bool))
        observations = SignalObservations(
            activity=measured.astype(np.float32),
            derivatives=(np.diff(measured, axis=1) / config.delta_t).astype(np.float32),
            inputs=inputs.astype(np.float32),
            edge_index=np.stack([source, target]).astype(np.int64),
            delta_t=config.delta_t,
            n_validation_runs=config.n_validation_runs,
        )
        truth = SignalGroundTruth(
            W=w,
            gain=config.g,
            types=types,
            decay=np.asarray(config.decay_per_type, dtype=float),
            baseline=np.asarray(config.baseline_per_type, dtype=float),
            self_recurrence=np.asarray(config.self_recurrence_per_type, dtype=float),
            threshold=np.asarray(config.threshold_per_type, dtype=float),
            width=np.asarray(config.width_per_type, dtype=float),
            clean_activity=clean.astype(np.float32),
        )
        return observations, truth
