r"""Graded (non-spiking) dynamics on the fly visual system connectome, integrated by exponential Euler.

.. math::
    \tau_{t(i)} \frac{dv_i}{dt} = -v_i + \sum_j W_{ij}\,\mathrm{ReLU}(v_j) + I_i(t) + V^{rest}_{t(i)}

W is sign · strength · synapse count per edge: the sign and count come from the connectome file, one
strength per edge type is drawn log-uniformly from ``syn_strength_range`` and every strength is then
multiplied by one factor so that the Perron root of |W| equals ``W_spectral_radius`` (< 1: ReLU is
1-Lipschitz, so the network is then globally stable whatever the input). τ and V_rest are drawn per cell
type, uniformly in ``tau_range`` and ``V_rest_range``. I_i is the visual input of photoreceptors
(:mod:`.stimulus`), zero elsewhere.

Integrator: exponential Euler with ``n_substeps`` substeps h = Δt / n_substeps,
v <- D + (v - D) exp(-h/τ), D = W ReLU(v) + I + V_rest held over the substep. The leak is integrated
exactly, so the scheme is stable for every h/τ (plain Euler at h = τ = 0.02 s, which 51 of the 65
published τ are close to, would sit on its stability limit). The default is one substep: the frame map
v_{t+1} = v_t + Δt s (D_t - v_t), s = (1 - exp(-Δt/τ)) / Δt, is then exactly linear in the frame-t
quantities the model sees, and the model's gauge inverts s exactly. With more substeps the drive changes
within a frame (presynaptic τ ≈ Δt), the frame map is no longer a function of frame t alone, and one-frame
regression is biased: least squares with the true functional form, noise-free, extent 1, 600 frames,
recovered W with median relative error 5e-4 at one substep and 1.2-1.8 at five (more frames did not help).
Runs start from the state reached after ``n_burn_in_frames`` of grey input, plus N(0,
``initial_state_std``²) per cell when that is > 0 (the test run is never kicked). Why kick: the visual
input alone left 16 of the 18 autapse cell types above 0 at every frame (extent 1, seed 42; ReLU(v) = v,
so autapse and leak are one coefficient) and no contrast, W scale or length fixed it; the transients
from a kicked start take every cell through 0 (``bench/flyvis_oracle_fit.py``).
Process noise is a diffusion (std ``noise_model_level * sqrt(h)`` per substep); measurement noise is
added to the saved frames only. The test run shows a stimulus kind held out of training and is simulated
without process noise: the noise-free re-simulation its rollout is scored against.
"""

import dataclasses
from typing import Literal

import numpy as np
import scipy.sparse as sp

from gnnlab.config.flyvis import FlyVisSimulation
from gnnlab.errors import ConfigError
from gnnlab.systems._base import Frames, GroundTruth, Observations, System
from gnnlab.systems.flyvis.connectome import Connectome, build_connectome
from gnnlab.systems.flyvis.stimulus import positions, stimulus_run
from gnnlab.systems.integrity import check_trajectory

REMEDY = "lower W_spectral_radius or stimulus_contrast"


@dataclasses.dataclass(frozen=True)
class FlyVisObservations(Observations):
    """Measured voltages, the photoreceptor input and the connectome's edges (known support). Inputs are
    stored for photoreceptors only and derivatives are formed on demand, so the cache holds one
    (runs, frames, cells) float32 array, not three."""

    activity: np.ndarray  # (n_runs, T, N) float32
    inputs: np.ndarray  # (n_runs, T, P) float32, P photoreceptor cells
    input_cells: np.ndarray  # (P,) int64 cell index of each input column
    edge_index: np.ndarray  # (2, E) int64, rows (source j, target i)
    test_activity: np.ndarray  # (T_test, N) float32: responses to the held-out stimulus (evaluation only)
    test_inputs: np.ndarray  # (T_test, P) float32
    delta_t: float
    n_validation_runs: int

    @property
    def n_cells(self) -> int:
        return self.activity.shape[2]

    @property
    def autapse_cells(self) -> np.ndarray:
        """(N,) bool: cells with a self-synapse in the known connectome. Where such a cell never goes below
        0, ReLU(v_i) = v_i and its autapse and leak are one coefficient (README, identifiability)."""
        source, target = self.edge_index
        autapse = np.zeros(self.n_cells, dtype=bool)
        autapse[target[source == target]] = True
        return autapse

    def full_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """(..., P) photoreceptor inputs scattered into (..., N) with zeros at every other cell."""
        full = np.zeros((*inputs.shape[:-1], self.n_cells), dtype=np.float32)
        full[..., self.input_cells] = inputs
        return full

    def frames(self, split: Literal["train", "validation"]) -> Frames:
        """Pairs (v_t, (v_{t+1} - v_t) / Δt) of the training or held-out runs, from the measured series."""
        n_train = self.activity.shape[0] - self.n_validation_runs
        runs = slice(0, n_train) if split == "train" else slice(n_train, None)
        activity = self.activity[runs]
        targets = (np.diff(activity, axis=1) / np.float32(self.delta_t)).reshape(-1, self.n_cells)
        return Frames(
            states=activity[:, :-1].reshape(-1, self.n_cells),
            inputs=self.full_inputs(self.inputs[runs, :-1]).reshape(-1, self.n_cells),
            targets=targets,
            mask=np.ones((1, self.n_cells), dtype=np.float32).repeat(len(targets), 0),
        )


@dataclasses.dataclass(frozen=True)
class FlyVisGroundTruth(GroundTruth):
    """Hidden: per-edge W, per-type τ and V_rest, strengths, types and the noise-free test activity."""

    W: np.ndarray  # (E,) float64, aligned with the observations' edge_index
    tau: np.ndarray  # (K,) per cell type, seconds
    V_rest: np.ndarray  # (K,)
    syn_strength: np.ndarray  # (n_edge_types,) after the global scaling
    cell_types: np.ndarray  # (N,) int
    edge_type: np.ndarray  # (E,) int
    edge_sign: np.ndarray  # (E,) float
    n_syn: np.ndarray  # (E,) float
    clean_test_activity: np.ndarray  # (T_test, N) float32


def perron_root(matrix: sp.csr_matrix, iterations: int = 2000, tol: float = 1e-10) -> float:
    """Spectral radius of a non-negative sparse matrix by power iteration on ``matrix + I`` (same Perron
    vector, and the shift removes the oscillation a periodic matrix would cause)."""
    x = np.ones(matrix.shape[0]) / matrix.shape[0]
    rho = 0.0
    for _ in range(iterations):
        y = matrix @ x + x
        new = float(y.sum())  # x sums to one, so this is the Rayleigh-like growth factor
        x = y / new
        if abs(new - rho) < tol * new:
            break
        rho = new
    return new - 1.0


def integrate(
    w: sp.csr_matrix,
    tau: np.ndarray,
    v_rest: np.ndarray,
    inputs: np.ndarray,
    v0: np.ndarray,
    config: FlyVisSimulation,
    rng: np.random.Generator,
    noise: float,
) -> np.ndarray:
    """States (T, R, N) from ``v0`` (R, N) under ``inputs`` (T, R, N), checking integrity every frame
    (frames numbered from the start of this call: burn-in, training runs and test run each start at 0)."""
    h = config.delta_t / config.n_substeps
    decay = np.exp(-h / tau)
    v = v0.copy()
    out = np.empty((inputs.shape[0], *v0.shape), dtype=np.float32)
    for frame in range(inputs.shape[0]):
        out[frame] = v
        for _ in range(config.n_substeps):
            drive = (w @ np.maximum(v, 0.0).T).T + inputs[frame] + v_rest
            v = drive + (v - drive) * decay
            if noise > 0:
                v = v + noise * np.sqrt(h) * rng.standard_normal(v.shape)
        check_trajectory(
            v[:, None, :],
            system="flyvis",
            bound=config.divergence_threshold,
            remedy=REMEDY,
            first_frame=frame + 1,
        )
    return out


def given_cell_parameters(
    table: dict[str, tuple[float, float]], type_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-type (τ, V_rest) in ``type_names`` order from a user's table, which must name every type."""
    problems = []
    if missing := [name for name in type_names if name not in table]:
        problems.append(f"missing cell types {', '.join(missing)}")
    if unknown := sorted(set(table) - set(type_names)):
        problems.append(f"unknown cell types {', '.join(unknown)}")
    if problems:
        raise ConfigError("simulation.cell_parameters: " + "; ".join(problems))
    values = np.array([table[name] for name in type_names], dtype=float)
    return values[:, 0], values[:, 1]


def draw_weights(
    connectome: Connectome, config: FlyVisSimulation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-edge W and per-edge-type strengths, scaled to the configured Perron root of |W|."""
    low, high = np.log(config.syn_strength_range)
    n = connectome.n_cells
    # per target type, its cells' mean total synapse count in: dividing each edge type's strength by its
    # target type's count makes a gain of 1 mean "relays the synapse-weighted mean of its inputs", so
    # cells with few synapses are not silenced by those with hundreds
    synapses_in = np.bincount(connectome.target, weights=connectome.n_syn, minlength=n)
    per_type = np.bincount(connectome.cell_type, weights=synapses_in) / np.bincount(connectome.cell_type)
    edge_target_type = np.zeros(connectome.n_edge_types, dtype=int)
    edge_target_type[connectome.edge_type] = connectome.cell_type[connectome.target]
    gain = np.exp(rng.uniform(low, high, connectome.n_edge_types))
    strength = gain / np.maximum(per_type[edge_target_type], 1.0)
    magnitude = strength[connectome.edge_type] * connectome.n_syn
    absolute = sp.csr_matrix((magnitude, (connectome.target, connectome.source)), shape=(n, n))
    scale = config.W_spectral_radius / perron_root(absolute)
    return connectome.edge_sign * magnitude * scale, strength * scale


class FlyVisSystem(System):
    """The fly visual system connectome with graded ReLU dynamics (seed 002)."""

    name = "flyvis"
    simulation_config = FlyVisSimulation
    observations_type = FlyVisObservations
    ground_truth_type = FlyVisGroundTruth

    def simulate(self, config: FlyVisSimulation) -> tuple[FlyVisObservations, FlyVisGroundTruth]:
        """Draw parameters, stimuli and runs from ``config.seed`` (one stream); raise
        :class:`~gnnlab.errors.SimulationDiverged` at the first non-finite or exploding state."""
        rng = np.random.default_rng(config.seed)
        connectome = build_connectome(config.extent)
        n, n_types = connectome.n_cells, len(connectome.type_names)
        tau_type = rng.uniform(*config.tau_range, n_types)
        v_rest_type = rng.uniform(*config.V_rest_range, n_types)
        if config.cell_parameters is not None:  # after the draws, so the rest of the stream is unchanged
            tau_type, v_rest_type = given_cell_parameters(config.cell_parameters, connectome.type_names)
        w_edges, strength = draw_weights(connectome, config, rng)
        w = sp.csr_matrix((w_edges, (connectome.target, connectome.source)), shape=(n, n))
        tau, v_rest = tau_type[connectome.cell_type], v_rest_type[connectome.cell_type]
        photoreceptors = connectome.input_cells()
        xy = positions(connectome.u[photoreceptors], connectome.v[photoreceptors])

        def movie(kinds: tuple[str, ...], n_runs: int, n_frames: int) -> np.ndarray:
            runs = [
                stimulus_run(
                    kinds,
                    r,
                    xy,
                    n_frames,
                    config.stimulus_segment_frames,
                    config.delta_t,
                    config.stimulus_contrast,
                    rng,
                )
                for r in range(n_runs)
            ]
            return np.stack(runs, axis=1)  # (T, R, P)

        def full(photo: np.ndarray) -> np.ndarray:
            drive = np.zeros((*photo.shape[:2], n))
            drive[..., photoreceptors] = photo
            return drive

        grey = np.zeros((config.n_burn_in_frames + 1, config.n_runs, n))
        start = np.repeat(v_rest[None, :], config.n_runs, axis=0)
        start = integrate(w, tau, v_rest, grey, start, config, rng, config.noise_model_level)[-1]
        photo = movie(config.stimulus_kinds, config.n_runs, config.n_frames)
        kicked = start
        if config.initial_state_std > 0:  # drawn only when used: datasets without it stay as they were
            kicked = start + config.initial_state_std * rng.standard_normal(start.shape)
        clean = integrate(w, tau, v_rest, full(photo), kicked, config, rng, config.noise_model_level)
        test_photo = movie((config.test_stimulus_kind,), 1, config.n_test_frames)
        test_clean = integrate(w, tau, v_rest, full(test_photo), start[:1], config, rng, 0.0)[:, 0]

        def measure(states: np.ndarray) -> np.ndarray:
            noisy = states + config.measurement_noise_level * rng.standard_normal(states.shape)
            return noisy.astype(np.float32)

        observations = FlyVisObservations(
            activity=measure(clean.transpose(1, 0, 2)),
            inputs=photo.transpose(1, 0, 2).astype(np.float32),
            input_cells=photoreceptors.astype(np.int64),
            edge_index=np.stack([connectome.source, connectome.target]).astype(np.int64),
            test_activity=measure(test_clean),
            test_inputs=test_photo[:, 0].astype(np.float32),
            delta_t=config.delta_t,
            n_validation_runs=config.n_validation_runs,
        )
        truth = FlyVisGroundTruth(
            W=w_edges,
            tau=tau_type,
            V_rest=v_rest_type,
            syn_strength=strength,
            cell_types=connectome.cell_type,
            edge_type=connectome.edge_type,
            edge_sign=connectome.edge_sign,
            n_syn=connectome.n_syn,
            clean_test_activity=test_clean.astype(np.float32),
        )
        return observations, truth
