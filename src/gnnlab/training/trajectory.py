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
like the others. Held-out runs are scored with starts from the readings, as a user would predict. Errors
are squared on the scale the readings' noise is uniform on (``error_model``): c for absolute noise,
ln(c + offset) for relative noise, told apart from the data by :func:`error_model`.

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
from scipy.ndimage import maximum_filter1d
from scipy.signal import savgol_filter
from torch import Tensor, nn

from gnnlab.errors import ConfigError
from gnnlab.models import DynamicsModel
from gnnlab.systems import Frames
from gnnlab.systems.metabolism.identifiability import noise_floor

# derivative regression is kept while the noise it amplifies stays below this share of the signal
NOISE_TO_SIGNAL_FOR_DERIVATIVES = 0.02
# smoothed derivatives are kept up to this share (absolute noise; between the measured 0.05 and 0.25)
NOISE_TO_SIGNAL_FOR_SMOOTHING = 0.1


def _robust_var(x: np.ndarray) -> np.ndarray:
    """Per-node variance from the median absolute deviation (N,): the few sharp turns of the signal in a
    difference series are outliers to it, not spread."""
    flat = x.reshape(-1, x.shape[-1])
    return (1.4826 * np.median(np.abs(flat - np.median(flat, axis=0)), axis=0)) ** 2


def measurement_noise(states: np.ndarray) -> np.ndarray:
    """Per-node std (N,) of the *measurement* noise in readings (runs, T, N), told apart from process noise.

    Third differences at stride s, c(t+3s) - 3c(t+2s) + 3c(t+s) - c(t), have variance 20 sigma_m^2 from
    white measurement noise whatever s, but 6 s q from a diffusion of variance q per frame (its increments
    are summed over s frames), and a smooth drift adds almost nothing at small s. So strides 1 and 2 give
    sigma_m^2 = (2 V_1 - V_2) / 20. Process noise leaves forward differences unbiased (the increment is
    independent of the state it starts from), measurement noise does not: only the latter should move
    training off derivative regression.
    """
    v1 = _robust_var(states[:, 3:] - 3 * states[:, 2:-1] + 3 * states[:, 1:-2] - states[:, :-3])
    v2 = _robust_var(states[:, 6:] - 3 * states[:, 4:-2] + 3 * states[:, 2:-4] - states[:, :-6])
    return np.sqrt(np.maximum(2 * v1 - v2, 0.0) / 20.0)


def noise_to_signal(states: np.ndarray, delta_t: float) -> float:
    """How much forward differences are measurement noise, from readings (runs, T, N) alone.

    A forward difference carries noise sqrt(2) sigma_m / Δt (sigma_m from :func:`measurement_noise`); its
    ratio to the spread of the differences themselves (median over nodes) says how much of a derivative
    target is noise.
    """
    sigma = measurement_noise(states)
    spread = (np.diff(states, axis=1) / delta_t).reshape(-1, states.shape[-1]).std(axis=0)
    ratio = math.sqrt(2.0) * sigma / delta_t / np.maximum(spread, 1e-12)
    return float(np.median(ratio))


def choose_objective(states: np.ndarray, delta_t: float) -> str:
    """The objective the readings (runs, T, N) call for, on the shipped benchmark's evidence (README):

    - ``derivative`` on clean data and under process noise alone (exact or unbiased, and fastest);
    - ``trajectory`` under relative noise (5 %, seed 0: R² 0.98 against 0.70 for ``smoothed_derivative``),
      and under absolute noise strong enough that smoothing cannot clean the derivatives (0.05,
      noise-to-signal 0.25: 0.86 against 0.55);
    - ``smoothed_derivative`` under weaker absolute noise (0.01, noise-to-signal 0.05: 0.96 against 0.93).
    """
    ratio = noise_to_signal(states, delta_t)
    if ratio < NOISE_TO_SIGNAL_FOR_DERIVATIVES:
        return "derivative"
    if ratio > NOISE_TO_SIGNAL_FOR_SMOOTHING or error_model(states) == "relative":
        return "trajectory"
    return "smoothed_derivative"


def error_model(states: np.ndarray, n_levels: int = 4) -> str:
    """``relative`` when the readings' (runs, T, N) measurement noise grows in proportion to their level,
    else ``absolute``.

    Each node's frames are put on its own scale (divided by its median reading) and pooled into
    ``n_levels`` level bins; in each, the noise std is the robust spread of third differences / sqrt(20)
    (:func:`measurement_noise`'s stride-1 term: the stride-2 correction turns negative where the signal is
    steep). The slope of log std against log level is about 1 for proportional errors and near 0 for
    absolute ones (1.10 at 1 % and 5 % relative noise, 0.22-0.32 at absolute 0.01-0.05 and under process
    noise, on the shipped benchmark); 0.5 splits them.
    """
    median = np.median(states, axis=(0, 1))
    scale = np.where(median > 0, median, 1.0)
    third = ((states[:, 3:] - 3 * states[:, 2:-1] + 3 * states[:, 1:-2] - states[:, :-3]) / scale).ravel()
    level = (states[:, 1:-2] / scale).ravel()
    edges = np.quantile(level[level > 0], np.linspace(0.0, 1.0, n_levels + 1))
    log_level, log_std = [], []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (level > low) & (level <= high)
        spread = 1.4826 * np.median(np.abs(third[inside] - np.median(third[inside])))
        log_level.append(math.log(np.median(level[inside])))
        log_std.append(math.log(max(spread, 1e-30) / math.sqrt(20.0)))
    return "relative" if np.polyfit(log_level, log_std, 1)[0] > 0.5 else "absolute"


def below_floor_mask(
    smooth: np.ndarray, floor: np.ndarray | float, stoichiometry: np.ndarray, window: int
) -> np.ndarray:
    """(runs, T, N) 1 where a derivative target can be trusted, 0 where a reaction touching the node
    consumes a pool whose smoothed reading is at or below its noise floor within the filter's window.

    Such a pool is empty or unreadable: the simulator's flux limiter (or a real pool running dry) slows
    every reaction consuming it, the smoothing spreads that kink over the window, and the pool's reading,
    dominated by noise, makes the reaction's rate unknowable there. Fitting those targets biases k (a
    least-squares fit with the true kinetic law on Savitzky-Golay targets of the benchmark at noise 0.01
    scores R² -0.37 with every frame, 0.97 with this mask); masking them only drops data.
    """
    low = maximum_filter1d((smooth <= floor).astype(np.uint8), size=window, axis=1) > 0
    consumed = (stoichiometry < 0).astype(np.float32)
    involved = (stoichiometry != 0).astype(np.float32)
    slowed = (low.astype(np.float32) @ consumed) > 0  # (runs, T, R) reactions consuming a low pool
    touched = (slowed.astype(np.float32) @ involved.T) > 0
    return (~low & ~touched).astype(np.float32)


def smoothed_frames(
    states: np.ndarray,
    inputs: np.ndarray,
    delta_t: float,
    window: int,
    order: int = 3,
    *,
    stoichiometry: np.ndarray | None = None,
    floor: np.ndarray | float | None = None,
) -> Frames:
    """Frames whose states *and* derivative targets come from a Savitzky–Golay fit of each reading series.

    The states are smoothed too, not only the targets: the model's inputs are readings as well, and noise
    in a regressor biases its coefficient towards zero (regression dilution). With ``stoichiometry``, the
    targets near pools at or below their noise ``floor`` (:func:`noise_floor` of the readings when None)
    are masked (:func:`below_floor_mask`).

    The first and last ``window`` frames of each run are left out. Half a window at each end is fitted
    one-sided (extrapolated); the other half is the margin the start of a run needs: a system released from
    an arbitrary state relaxes fastest there. On the mixed network (orders up to 6) the true law's loss on
    the second and third frames was 10^3-10^6 times its loss elsewhere, and those frames set the per-node
    loss weights.
    """
    length = window if window % 2 == 1 else window + 1
    if states.shape[1] <= 2 * length:
        raise ConfigError(
            f"training.smoothing_window = {window} leaves no frames of a {states.shape[1]}-frame run "
            f"(each end loses a window); use a smaller window"
        )
    smooth = savgol_filter(states, length, order, axis=1)
    slope = savgol_filter(states, length, order, deriv=1, delta=delta_t, axis=1)
    n = states.shape[-1]
    if stoichiometry is None:
        mask = np.ones_like(smooth, dtype=np.float32)
    else:
        floor = noise_floor(states) if floor is None else floor
        mask = below_floor_mask(smooth, floor, stoichiometry, length)
    inner = slice(length, -length)
    return Frames(
        states=np.maximum(smooth[:, inner], 0.0).reshape(-1, n).astype(np.float32),
        inputs=inputs[:, inner].reshape(-1, n).astype(np.float32),
        targets=slope[:, inner].reshape(-1, n).astype(np.float32),
        mask=mask[:, inner].reshape(-1, n),
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
    """The multiple-shooting loss of a model over a set of windows, with optional free start states.

    Starts are fitted on the scale readings are compared on. Adam's steps are about ``lr`` per coordinate
    whatever the gradient's scale, and the momentum of a window's start keeps moving it in the many steps
    its window is not in the batch: under relative noise a step of 0.01 in c doubles a precisely read pool
    at 0.01, a step in ln(c + offset) is a relative change (5 % relative noise, seed 0: R² 0.17 with
    starts fitted as c, 0.96 as ln c). Under absolute noise c is the scale the noise is uniform on.

    ``log_offset`` None compares states as they are (absolute errors); a number compares ln(c + log_offset),
    whose errors are relative above the offset and absolute below it. Either way every reading counts
    alike: least squares on the scale where the noise is uniform is maximum likelihood. Squared errors of c
    under relative noise would let the largest readings (a 5 % error of a peak at 60 is 3) swamp the
    precise small ones; per-node weights 1/var(c) under absolute noise, which derivative regression needs,
    over-weight the nodes that read lowest and noisiest (noise 0.05, seed 0: R² 0.42 against 0.73).
    """

    def __init__(
        self,
        windows: Windows,
        delta_t: float,
        substeps: int,
        fit_starts: bool,
        log_offset: float | None = None,
    ):
        super().__init__()
        self.windows, self.log_offset = windows, log_offset
        self.h, self.substeps = delta_t / substeps, substeps
        self.targets = self.scale(windows.readings)  # the readings on the loss's scale, computed once
        self.starts = nn.Parameter(self.targets[:, 0].clone(), requires_grad=fit_starts)

    def scale(self, states: Tensor) -> Tensor:
        """States on the scale readings are compared on: c, or ln(c + log_offset)."""
        return states if self.log_offset is None else torch.log(states.clamp_min(0.0) + self.log_offset)

    def predict(self, model: DynamicsModel, index: Tensor | slice) -> Tensor:
        """States (B, L+1, N) from the (fitted) starts of the chosen windows."""
        start = self.starts[index]
        state = start if self.log_offset is None else torch.exp(start) - self.log_offset
        inputs = self.windows.inputs[index]
        path = [state]
        for step in range(inputs.shape[1]):
            for _ in range(self.substeps):
                state = state + self.h * model.derivative(state, inputs[:, step])
            path.append(state)
        return torch.stack(path, dim=1)

    def loss(self, model: DynamicsModel, index: Tensor | slice) -> Tensor:
        """Mean squared error of predicted against read states on the error model's scale; zero readings
        (censored) are out."""
        mask, error = self._errors(model, index)
        return (error**2 * mask).sum() / mask.sum().clamp_min(1.0)

    def residuals(self, model: DynamicsModel, index: Tensor | slice) -> Tensor:
        """The errors whose summed square is :meth:`loss` (for its Gauss-Newton curvature)."""
        mask, error = self._errors(model, index)
        return error * mask / mask.sum().clamp_min(1.0).sqrt()

    def _errors(self, model: DynamicsModel, index: Tensor | slice) -> tuple[Tensor, Tensor]:
        mask = (self.windows.readings[index] > 0).float()
        return mask, self.scale(self.predict(model, index)) - self.targets[index]


def rate_prior_weight(log_k: Tensor, noise_var: float, n_readings: int) -> float:
    """Weight of an empirical-Bayes Gaussian prior on log10 k for a mean-squared-error loss.

    Why: where the readings cannot see a reaction's substrate (a pool near zero under absolute noise),
    only the flux k * c is determined, and least squares lets k and the hidden level trade off by decades
    (noise 0.05, seed 0: two reactions on a pool at median 0.003 came out 1.3 and 1.1 decades low, two
    thirds of the squared log error). A network's rate constants share a scale; a Gaussian prior across
    them moves only the k the data leave free. Its width tau is estimated from ``log_k`` as fitted so far
    (robust std), so nothing about the true spread is assumed; maximum a posteriori with
    Gaussian errors of variance ``noise_var`` over ``n_readings`` readings is the mean squared error plus
    noise_var / (n tau^2) * sum (log10 k - mean)^2.
    """
    values = log_k.detach().cpu().numpy()
    tau = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    return noise_var / (n_readings * max(tau, 1e-6) ** 2)


class RatePrior:
    """The empirical-Bayes prior on log10 k (:func:`rate_prior_weight`) as a loss term; zero when ``log_k``
    is None (a model without rate constants, or ``rate_prior`` off).

    Its weight needs the readings' noise variance on the shooting loss's scale (:func:`measurement_noise`
    of ``readings`` (runs, T, N), median over nodes), the number of readings compared, and a width from the
    k fitted so far: first the smoothed-derivative warm start's, then (:meth:`estimate`, before L-BFGS) the
    Adam shooting phase's, which are closer to the data and so spread less by error."""

    def __init__(self, log_k: Tensor | None, shooting: Shooting, readings: np.ndarray):
        self.log_k, self.weight = log_k, 0.0
        if log_k is not None:
            scaled = shooting.scale(torch.as_tensor(readings, dtype=torch.float32)).numpy()
            self.noise_var = float(np.median(measurement_noise(scaled))) ** 2
            self.n_readings = int((shooting.windows.readings > 0).sum())
            self.estimate()

    def estimate(self) -> None:
        """Set the prior's width from ``log_k`` as it is now."""
        if self.log_k is not None:
            self.weight = rate_prior_weight(self.log_k, self.noise_var, self.n_readings)

    def __call__(self) -> Tensor:
        if self.log_k is None:
            return torch.zeros(())
        return self.weight * ((self.log_k - self.log_k.mean()) ** 2).sum()


__all__ = [
    "RatePrior",
    "Shooting",
    "Windows",
    "below_floor_mask",
    "choose_objective",
    "error_model",
    "measurement_noise",
    "noise_floor",
    "noise_to_signal",
    "rate_prior_weight",
    "smoothed_frames",
]
