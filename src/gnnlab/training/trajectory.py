r"""Objectives that survive measurement noise: multiple shooting on trajectories, and smoothed derivatives.

Why: a forward difference divides the measurement noise by Δt, so derivative regression on noisy readings
fits noise (on the shipped benchmark, noise 0.01 cost R² 0.999 → 0.74, and a least-squares fit *with the
true kinetic law* on those differences fails too). A trajectory is not divided by anything.

**Multiple shooting** (``objective: trajectory``). Each training run is cut into non-overlapping windows of
``window`` observation intervals. From each window's start state the model is integrated (explicit Euler,
``rollout_substeps`` steps per interval, vectorised over windows and back-propagated through) and the
predicted states are matched to the readings at every interval. Short windows keep the problem well
conditioned (errors cannot compound over a long horizon, chaos cannot decorrelate a window); several steps
per window average the noise that a single difference amplifies.

The window start states are *free parameters* initialised from the readings (``fit_window_starts``): a start
taken from a noisy reading would inject that reading's noise into every prediction of the window, whereas a
fitted start is pulled to the value the whole window supports. The reading at the start is then matched
like the others. Held-out runs are scored with starts from the readings, as a user would predict.

**Smoothed derivatives** (``objective: smoothed_derivative``): Savitzky–Golay derivative targets (scipy),
cheap and often enough at moderate noise.

``objective: auto`` chooses from the data alone (:func:`choose_objective`). Shooting starts from an Adam pass
on smoothed derivatives (see ``train_dynamics``): from a model that does not yet oscillate like the data the
shooting loss is far from convex.
"""

import dataclasses
import math

import numpy as np
import torch
from scipy.signal import savgol_filter
from torch import Tensor, nn

from gnnlab.errors import ConfigError
from gnnlab.models import DynamicsModel
from gnnlab.systems import Frames

# derivative regression is kept while the noise it amplifies stays below this share of the signal
NOISE_TO_SIGNAL_FOR_DERIVATIVES = 0.02


def noise_to_signal(states: np.ndarray, delta_t: float) -> float:
    """How much forward differences are noise, from readings (runs, T, N) alone.

    White measurement noise of std sigma gives third differences of variance 20 sigma^2 while a smooth
    trajectory sampled finely gives almost none, so sigma ~ std(Δ³c) / sqrt(20) per node. A forward
    difference carries noise sqrt(2) sigma / Δt; the ratio to the spread of the differences themselves
    (median over nodes) says how much of a derivative target is noise.
    """
    third = np.diff(states, n=3, axis=1).reshape(-1, states.shape[-1])
    sigma = third.std(axis=0) / math.sqrt(20.0)
    spread = (np.diff(states, axis=1) / delta_t).reshape(-1, states.shape[-1]).std(axis=0)
    ratio = math.sqrt(2.0) * sigma / delta_t / np.maximum(spread, 1e-12)
    return float(np.median(ratio))


def choose_objective(states: np.ndarray, delta_t: float) -> str:
    """``derivative`` on clean data (exact and fastest), ``smoothed_derivative`` once noise dominates the
    differences: on the shipped benchmark with measurement noise 0.01 it scored R² 0.85 against 0.79 for
    shooting and -0.54 for raw differences (seed 0; see the README)."""
    clean = noise_to_signal(states, delta_t) < NOISE_TO_SIGNAL_FOR_DERIVATIVES
    return "derivative" if clean else "smoothed_derivative"


def smoothed_frames(
    states: np.ndarray, inputs: np.ndarray, delta_t: float, window: int, order: int = 3
) -> Frames:
    """Frames whose states and derivative targets come from a Savitzky–Golay fit of each reading series."""
    length = window if window % 2 == 1 else window + 1
    smooth = savgol_filter(states, length, order, axis=1)
    slope = savgol_filter(states, length, order, deriv=1, delta=delta_t, axis=1)
    n = states.shape[-1]
    return Frames(
        states=np.maximum(smooth, 0.0).reshape(-1, n).astype(np.float32),
        inputs=inputs.reshape(-1, n).astype(np.float32),
        targets=slope.reshape(-1, n).astype(np.float32),
        mask=np.ones((smooth.size // n, n), dtype=np.float32),
    )


@dataclasses.dataclass(frozen=True)
class Windows:
    """Non-overlapping windows of ``length`` intervals: readings (W, L+1, N) and inputs (W, L, N)."""

    readings: Tensor
    inputs: Tensor

    @classmethod
    def cut(cls, states: np.ndarray, inputs: np.ndarray, length: int, device: torch.device) -> "Windows":
        runs, frames, n = states.shape
        n_windows = (frames - 1) // length
        if n_windows == 0:
            raise ConfigError(
                f"training.window = {length} intervals exceeds the {frames - 1} intervals of a run"
            )
        starts = np.arange(n_windows) * length
        offsets = np.arange(length + 1)
        readings = states[:, starts[:, None] + offsets[None, :]].reshape(-1, length + 1, n)
        window_inputs = inputs[:, starts[:, None] + offsets[None, :-1]].reshape(-1, length, n)
        as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
        return cls(as_tensor(readings), as_tensor(window_inputs))

    def __len__(self) -> int:
        return self.readings.shape[0]


class Shooting(nn.Module):
    """The multiple-shooting loss of a model over a set of windows, with optional free start states."""

    def __init__(self, windows: Windows, weights: Tensor, delta_t: float, substeps: int, fit_starts: bool):
        super().__init__()
        self.windows, self.weights = windows, weights
        self.h, self.substeps = delta_t / substeps, substeps
        self.starts = nn.Parameter(windows.readings[:, 0].clone(), requires_grad=fit_starts)

    def predict(self, model: DynamicsModel, index: Tensor | slice) -> Tensor:
        """States (B, L+1, N) from the (fitted) starts of the chosen windows."""
        state = self.starts[index]
        inputs = self.windows.inputs[index]
        path = [state]
        for step in range(inputs.shape[1]):
            for _ in range(self.substeps):
                state = state + self.h * model.derivative(state, inputs[:, step])
            path.append(state)
        return torch.stack(path, dim=1)

    def loss(self, model: DynamicsModel, index: Tensor | slice) -> Tensor:
        """Mean weighted squared error of predicted against read states; zero readings (censored) are out."""
        readings = self.windows.readings[index]
        mask = (readings > 0).float()
        error = (self.predict(model, index) - readings) ** 2 * self.weights * mask
        return error.sum() / mask.sum().clamp_min(1.0)


def state_weights(readings: Tensor, normalisation: str) -> Tensor:
    """Per-node 1/var(readings) (or ones), so every metabolite's error counts alike whatever its scale."""
    flat = readings.reshape(-1, readings.shape[-1])
    if normalisation == "none":
        return torch.ones(flat.shape[1], device=flat.device)
    var = flat.var(dim=0)
    return 1.0 / var.clamp_min(1e-6 * float(var.max().clamp_min(1e-12)))


__all__ = ["Shooting", "Windows", "choose_objective", "noise_to_signal", "smoothed_frames", "state_weights"]
