"""Trainers, one per kind of model, registered by system in :data:`TRAINERS`.

This module holds the dynamics trainer (metabolism's, and signal's with seed 003's noise augmentation): Adam
on mini-batches of frames, then an optional full-batch L-BFGS refinement. :mod:`.perturbation` trains
perturbation-effect predictors.

Training sees :class:`~gnnlab.systems.Frames` built from observations and nothing else: this module imports
no evaluation code and no ground-truth loader (``tests/test_leakage.py`` holds it to that).

Why two phases: Adam with per-group learning rates finds the basin quickly from any initialisation but
stalls at a noise floor set by its mini-batches; the data are deterministic and the models small, so a
full-batch quasi-Newton method then converges to the minimum instead of hovering near it.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from gnnlab.config import TrainingBase
from gnnlab.errors import TrainingDiverged
from gnnlab.models import DynamicsModel
from gnnlab.systems import Frames, Observations
from gnnlab.training import perturbation, trajectory

# (frame, node) entries per forward pass when a step uses every frame: chunks that stay in cache ran the
# 400-metabolite network's full-batch loss and gradient 1.8x faster than 4,096-frame chunks (0.61 s vs 1.11 s
# on 2 threads; the 100-metabolite network's is unchanged); memory stays flat whatever the dataset size
FULL_BATCH_ENTRIES = 2**17


@dataclasses.dataclass(frozen=True)
class FrameTensors:
    """Frames on a device, with the per-node loss weights derived from the training targets."""

    states: Tensor
    inputs: Tensor
    targets: Tensor
    mask: Tensor

    @classmethod
    def from_frames(cls, frames: Frames, device: torch.device) -> "FrameTensors":
        as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
        return cls(
            as_tensor(frames.states),
            as_tensor(frames.inputs),
            as_tensor(frames.targets),
            as_tensor(frames.mask),
        )

    def __len__(self) -> int:
        return self.states.shape[0]

    def batch(self, index: Tensor) -> "FrameTensors":
        return FrameTensors(self.states[index], self.inputs[index], self.targets[index], self.mask[index])

    def chunks(self, size: int | None = None):
        """Consecutive batches of ``size`` frames (default: :data:`FULL_BATCH_ENTRIES` entries each)."""
        size = size or max(1, FULL_BATCH_ENTRIES // max(1, self.states[0].numel()))
        for start in range(0, len(self), size):
            yield self.batch(slice(start, start + size))


def loss_weights(frames: FrameTensors, normalisation: str) -> Tensor:
    """Per-node weights 1/var(target) (or ones): every node's error counts alike, whatever its scale."""
    if normalisation == "none":
        return torch.ones(frames.targets.shape[1], device=frames.targets.device)
    count = frames.mask.sum(0).clamp_min(1.0)
    mean = (frames.targets * frames.mask).sum(0) / count
    var = (((frames.targets - mean) ** 2) * frames.mask).sum(0) / count
    floor = 1e-6 * float(var.max().clamp_min(1e-12))  # a node whose targets never move must not dominate
    return 1.0 / var.clamp_min(floor)


def data_loss(model: DynamicsModel, frames: FrameTensors, weights: Tensor) -> Tensor:
    """Mean weighted squared error of the predicted derivative over unmasked entries."""
    error = (model.derivative(frames.states, frames.inputs) - frames.targets) ** 2
    return (error * weights * frames.mask).sum() / frames.mask.sum().clamp_min(1.0)


def full_loss(model: DynamicsModel, frames: FrameTensors, weights: Tensor) -> float:
    """:func:`data_loss` over every frame, in chunks, without gradients."""
    with torch.no_grad():
        total = sum(
            float(data_loss(model, chunk, weights)) * float(chunk.mask.sum()) for chunk in frames.chunks()
        )
    return total / max(float(frames.mask.sum()), 1.0)


@dataclasses.dataclass
class TrainResult:
    """A dynamics run's outcome; :meth:`summary` (field order kept) is what the run record reports."""

    status: str  # "ok" or "failed: diverged"
    message: str
    val_loss: float | None  # the same loss on the held-out runs
    final_loss: float | None  # full-batch training loss at the end (a mean, comparable across runs)
    training_time_s: float
    frames_per_second: float  # Adam-phase throughput, forward + backward
    adam_steps: int
    lbfgs_iterations: int
    history: dict[str, list[float]]
    objective: str  # which objective ran (``auto`` resolved)
    error_model: str | None = None  # trajectory: the scale readings were compared on (``auto`` resolved)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "history"}


def _schedule(training: TrainingBase, total_steps: int):
    def factor(step: int) -> float:
        if step < training.lr_warmup_steps:
            return (step + 1) / training.lr_warmup_steps
        if training.lr_schedule == "constant":
            return 1.0
        progress = (step - training.lr_warmup_steps) / max(1, total_steps - training.lr_warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the two-phase driver needs from a loss: a mini-batch loss for Adam step ``step``, the full loss
    on the training and held-out data, an L-BFGS refinement, and how many frames one Adam step consumes."""

    batch_loss: Callable[[int], Tensor]
    train_loss: Callable[[], float]
    held_out_loss: Callable[[], float]
    refine: Callable[[dict[str, list[float]]], int]
    frames_per_step: int
    total_steps: int
    name: str
    n_validations: int = 20  # held-out evaluations during the Adam phase (each costs a full pass)


def _fit(
    model: DynamicsModel,
    groups: list[dict[str, Any]],
    objective: Objective,
    training: TrainingBase,
    progress: bool,
) -> TrainResult:
    """Adam with per-group rates and the schedule, then the objective's refinement; a non-finite loss at any
    point ends the fit with status ``failed: diverged`` instead of raising."""
    total_steps = objective.total_steps
    # >>> explore-region: optimizer (an agent with explore.allow_code_edits may rewrite these lines only)
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(training, total_steps))
    # <<< explore-region: optimizer
    history: dict[str, list[float]] = {"loss": [], "val_step": [], "val_loss": [], "lbfgs_loss": []}
    eval_every = max(1, total_steps // max(1, objective.n_validations))
    start = time.perf_counter()
    step = 0
    try:
        bar = tqdm(
            total=total_steps,
            desc=f"train ({objective.name})",
            unit="step",
            disable=not progress,
            dynamic_ncols=True,
        )
        with bar:
            for step in range(total_steps):
                loss = objective.batch_loss(step)
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainingDiverged(f"loss is {value} at Adam step {step}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if training.grad_clip_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip_norm)
                optimizer.step()
                scheduler.step()
                history["loss"].append(value)
                if step % eval_every == 0 or step == total_steps - 1:
                    history["val_step"].append(step)
                    history["val_loss"].append(objective.held_out_loss())
                    bar.set_postfix(loss=f"{value:.3g}", val=f"{history['val_loss'][-1]:.3g}")
                bar.update()
        adam_time = time.perf_counter() - start
        lbfgs_done = objective.refine(history)
    except TrainingDiverged as exc:
        elapsed = time.perf_counter() - start
        return TrainResult(
            status="failed: diverged",
            message=str(exc),
            adam_steps=step,
            lbfgs_iterations=len(history["lbfgs_loss"]),
            final_loss=None,
            val_loss=None,
            frames_per_second=step * objective.frames_per_step / max(elapsed, 1e-9),
            training_time_s=elapsed,
            history=history,
            objective=objective.name,
        )
    return TrainResult(
        status="ok",
        message="",
        adam_steps=total_steps,
        lbfgs_iterations=lbfgs_done,
        final_loss=objective.train_loss(),
        val_loss=objective.held_out_loss(),
        frames_per_second=total_steps * objective.frames_per_step / max(adam_time, 1e-9),
        training_time_s=time.perf_counter() - start,
        history=history,
        objective=objective.name,
    )


def _prepare(model: DynamicsModel, training: TrainingBase) -> torch.device:
    if training.n_threads:
        torch.set_num_threads(training.n_threads)
    device = resolve_device(training.device)
    model.to(device)
    return device


def train(
    model: DynamicsModel,
    train_frames: Frames,
    validation_frames: Frames,
    training: TrainingBase,
    *,
    progress: bool = True,
    name: str = "derivative",
    state_noise: float = 0.0,
) -> TrainResult:
    """Fit ``model`` to the frames in place; never raises on divergence (the result says so instead).

    ``state_noise`` > 0 adds fresh Gaussian noise to each Adam batch's input states (not its targets), so
    the model is fitted on a neighbourhood of the observed trajectory rather than on the trajectory alone;
    the L-BFGS phase then fits the clean frames.
    """
    device = _prepare(model, training)
    data = FrameTensors.from_frames(train_frames, device)
    held_out = FrameTensors.from_frames(validation_frames, device)
    weights = loss_weights(data, training.loss_normalisation)
    generator = torch.Generator(device="cpu").manual_seed(training.seed)

    def batch_loss(step: int) -> Tensor:
        index = torch.randint(len(data), (training.batch_size,), generator=generator).to(device)
        batch = data.batch(index)
        if state_noise > 0:
            noise = torch.randn(batch.states.shape, generator=generator).to(device)
            batch = dataclasses.replace(batch, states=batch.states + state_noise * noise)
        return data_loss(model, batch, weights) + model.penalty(batch.states, training)

    steps_per_epoch = math.ceil(len(data) * training.data_augmentation_loop / training.batch_size)
    objective = Objective(
        batch_loss=batch_loss,
        train_loss=lambda: full_loss(model, data, weights),
        held_out_loss=lambda: full_loss(model, held_out, weights),
        refine=lambda history: _lbfgs(
            [p for p in model.parameters() if p.requires_grad],
            training,
            history,
            progress,
            _frames_loss_and_backward(model, data, weights, training),
            _gauss_newton_diagonal(lambda: _frame_residuals(model, data, weights), training.seed),
        ),
        frames_per_step=training.batch_size,
        total_steps=steps_per_epoch * training.n_epochs,
        name=name,
    )
    return _fit(model, model.param_groups(training), objective, training, progress)


def _lbfgs(
    params: list[Tensor],
    training: TrainingBase,
    history: dict[str, list[float]],
    progress: bool,
    loss_and_backward: Callable[[], Tensor],
    curvature: Callable[[list[Tensor]], list[Tensor]] | None = None,
) -> int:
    """Full-batch L-BFGS with a strong-Wolfe line search over ``params``; ``loss_and_backward`` evaluates the
    whole loss, accumulates its gradients and returns it detached. Returns the iterations run.

    With ``training.lbfgs_preconditioner: gauss_newton`` and a ``curvature`` (the loss's Gauss-Newton
    diagonal at given parameters), L-BFGS runs N = ``training.lbfgs_curvature_every`` iterations unscaled,
    then steps in the rescaled parameters of :class:`_Rescaled`, restarted with the curvature read afresh
    after N, 2N, 4N, ... more iterations: a rate constant's curvature scales with k^2, so a scale read before
    L-BFGS has moved k is decades off; as the fit settles it moves less, while each restart discards L-BFGS's
    history, and near the fit a fresh run's first steps are lost in float32 rounding. A rescaled run that
    ends before its length has stalled there and ends the refinement (restarting it cost a curvature reading
    per iteration or two). The first run is unscaled because where Adam stops g has not yet taken its shape,
    and the curvature read there misleads (mixed network, seed 0: read there once, R² 0.20 after 1,400
    evaluations; after 600 unscaled iterations, 0.96). It is the default because it is what makes the
    refinement converge: on the clean 400-metabolite network plain L-BFGS took R² from 0.9927 to 0.9975 in 685
    evaluations, and with N = 100 to 0.9999 in 250 (README).

    An unscaled run of the optimiser sees the loss divided by its value at the run's start (history keeps the
    unscaled values). Its first step is -g scaled by min(1, 1/|g|_1): with an unscaled loss of order 1e-5
    that step changes the loss by less than float32 resolves, the line search reads summation noise (which
    differs with the thread count), and the run stopped after 3 iterations on 2 threads while it ran all 300
    on one. (So the rescaled parameters of :class:`_Rescaled` whiten the Hessian of the loss so divided.)

    A non-finite loss at a line-search trial point ends the refinement, not the run: the parameters go back
    to the best point evaluated and ``history["lbfgs_nonfinite"]`` records the evaluation. Only a non-finite
    loss at the starting point, which is the model Adam left, is a divergence."""
    preconditioned = curvature is not None and training.lbfgs_preconditioner == "gauss_newton"
    done, segment = 0, 0
    with tqdm(desc="refine (L-BFGS)", unit="eval", disable=not progress, dynamic_ncols=True) as bar:
        while done < training.lbfgs_iterations:
            length = training.lbfgs_iterations - done
            if preconditioned:  # N unscaled, then rescaled runs of N, 2N, 4N, ...
                length = min(length, training.lbfgs_curvature_every * 2 ** max(segment - 1, 0))
            if segment > 0:  # only a preconditioned refinement gets past its first run
                rescaled = _Rescaled(params, curvature(params), loss_and_backward)
                ran, stopped = _lbfgs_run(rescaled.steps, rescaled.loss_and_backward, length, history, bar)
                rescaled.apply()
            else:
                ran, stopped = _lbfgs_run(params, loss_and_backward, length, history, bar)
            done, segment = done + ran, segment + 1
            if stopped or not preconditioned or (ran < length and segment > 1):
                break  # one run when unscaled; a rescaled run that ended early stalled: restarts won't help
    return done


def _lbfgs_run(
    params: list[Tensor],
    loss_and_backward: Callable[[], Tensor],
    iterations: int,
    history: dict[str, list[float]],
    bar: tqdm,
) -> tuple[int, bool]:
    """One run of the optimiser (see :func:`_lbfgs`): returns its iterations and whether a non-finite trial
    point stopped it."""
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=iterations,
        max_eval=2 * iterations,
        history_size=50,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    scale: list[float] = []  # 1 / the first loss, fixed for the whole run so the objective never changes
    best: list[tuple[float, list[Tensor]]] = []  # (loss, parameter values) of the best evaluated point

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_and_backward()
        value = loss.item()
        if not math.isfinite(value):
            raise _NonFiniteTrial(f"loss is {value} during L-BFGS evaluation {len(history['lbfgs_loss'])}")
        history["lbfgs_loss"].append(value)
        if not best or value < best[0][0]:
            best[:] = [(value, [p.detach().clone() for p in params])]
        bar.set_postfix(loss=f"{value:.3g}")
        bar.update()
        if not scale:
            scale.append(1.0 / value if value > 0 else 1.0)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale[0])
        return loss * scale[0]

    try:
        optimizer.step(closure)
    except _NonFiniteTrial as trial:
        if not best:
            raise TrainingDiverged(str(trial)) from None
        with torch.no_grad():
            for p, value in zip(params, best[0][1], strict=True):
                p.copy_(value)
        history.setdefault("lbfgs_nonfinite", []).append(len(history["lbfgs_loss"]))
        return int(optimizer.state[params[0]].get("n_iter", 0)), True
    return int(optimizer.state[params[0]].get("n_iter", 0)), False


GAUSS_NEWTON_DAMPING = 1e-3  # of a tensor's mean curvature: caps a barely constrained entry's scale at ~30x


class _Rescaled:
    """Parameters p = p0 + s * u with s = sqrt(L0 / 2) / sqrt(diag(J^T J) + damping), L0 the loss at p0:
    L-BFGS moves u, in which every direction of the loss it sees, L / L0, has about unit curvature (Jacobi
    preconditioning of its Gauss-Newton matrix 2 J^T J / L0). So the first step of a run, -g, is about the
    Gauss-Newton step: without the sqrt(L0 / 2), near the fit (L0 = 8.9e-8, mixed network) the first trial
    point raised the loss to 0.04; with it, to 9.0e-8.

    Why: a rate constant whose substrates sit on nearly empty pools changes the loss 10^6 times less than one
    on full pools (the mixed metabolic network's Gauss-Newton diagonal spans 4e-5 to 2e2). L-BFGS keeps 50
    curvature pairs, too few to learn that spread, so it crept along the flat directions: from the same
    start, 100 more evaluations moved rate_constants_R2 0.600 -> 0.605 unscaled and 0.600 -> 0.83 scaled."""

    def __init__(self, params: list[Tensor], diagonal: list[Tensor], loss_and_backward: Callable[[], Tensor]):
        self.params = params
        self.origin = [p.detach().clone() for p in params]
        root = math.sqrt(0.5 * float(loss_and_backward()))
        for p in params:
            p.grad = None
        tiny = torch.finfo(diagonal[0].dtype).tiny
        self.scales = [root * torch.rsqrt(d + GAUSS_NEWTON_DAMPING * d.mean() + tiny) for d in diagonal]
        self.steps = [torch.zeros_like(p, requires_grad=True) for p in params]
        self._loss_and_backward = loss_and_backward

    def apply(self) -> None:
        """Write p0 + s * u into the parameters."""
        with torch.no_grad():
            for p, origin, scale, step in zip(self.params, self.origin, self.scales, self.steps, strict=True):
                p.copy_(origin + scale * step)

    def loss_and_backward(self) -> Tensor:
        """The loss at p0 + s * u, its gradient carried to u by the chain rule (d/du = s * d/dp)."""
        self.apply()
        for p in self.params:
            p.grad = None
        loss = self._loss_and_backward()
        for p, scale, step in zip(self.params, self.scales, self.steps, strict=True):
            step.grad = None if p.grad is None else p.grad * scale
        return loss


GAUSS_NEWTON_PROBES = 32  # Rademacher probes: each diagonal entry to ~25 % (sqrt(2/32)), ample for a scale


def _gauss_newton_diagonal(
    residuals: Callable[[], Iterator[Tensor]], seed: int
) -> Callable[[list[Tensor]], list[Tensor]]:
    """diag(J^T J) of a least-squares loss with respect to given parameters; ``residuals`` yields the loss's
    weighted residuals in chunks (the loss is their summed square; constant targets may be left out).

    For v with independent +-1 entries E[(J^T v)^2] = diag(J^T J), so each probe costs one backward pass."""

    def estimate(params: list[Tensor]) -> list[Tensor]:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        total = [torch.zeros_like(p) for p in params]
        for _ in range(GAUSS_NEWTON_PROBES):
            probe = [torch.zeros_like(p) for p in params]
            for chunk in residuals():
                sign = torch.randint(0, 2, chunk.shape, generator=generator).to(chunk) * 2 - 1
                grads = torch.autograd.grad((chunk * sign).sum(), params, allow_unused=True)
                for acc, grad in zip(probe, grads, strict=True):
                    if grad is not None:
                        acc += grad
            for acc, g in zip(total, probe, strict=True):
                acc += g**2 / GAUSS_NEWTON_PROBES
        return total

    return estimate


def _frame_residuals(model: DynamicsModel, data: FrameTensors, weights: Tensor) -> Iterator[Tensor]:
    """The derivative loss's residuals without their targets, sqrt(w m / n) f, chunk by chunk."""
    n_valid = data.mask.sum().clamp_min(1.0)
    for chunk in data.chunks():
        yield model.derivative(chunk.states, chunk.inputs) * torch.sqrt(weights * chunk.mask / n_valid)


class _NonFiniteTrial(ArithmeticError):
    """A line-search trial point of L-BFGS gave a non-finite loss (handled inside :func:`_lbfgs`)."""


def _frames_loss_and_backward(
    model: DynamicsModel, data: FrameTensors, weights: Tensor, training: TrainingBase
) -> Callable[[], Tensor]:
    """Data loss + penalties over every frame, in chunks (backward per chunk keeps memory flat)."""
    n_valid = data.mask.sum().clamp_min(1.0)

    def evaluate() -> Tensor:
        total = torch.zeros((), device=data.states.device)
        for chunk in data.chunks():
            part = data_loss(model, chunk, weights) * chunk.mask.sum() / n_valid
            part.backward()
            total = total + part.detach()
        penalty = model.penalty(data.states[: training.batch_size], training)
        if penalty.requires_grad:
            penalty.backward()
        return total + penalty.detach()

    return evaluate


def train_shooting(
    model: DynamicsModel,
    train_states: tuple[np.ndarray, np.ndarray],
    validation_states: tuple[np.ndarray, np.ndarray],
    training: TrainingBase,
    delta_t: float,
    error_model: str,
    *,
    progress: bool = True,
) -> TrainResult:
    """Fit ``model`` by multiple shooting (:mod:`.trajectory`): Adam on mini-batches of windows, then
    full-batch L-BFGS. ``*_states`` are (readings (runs, T, N), inputs (runs, T, N)) pairs; ``error_model``
    (``absolute`` or ``relative``) is the scale the readings are compared on."""
    device = _prepare(model, training)
    windows = trajectory.Windows.cut(*train_states, training.window, device)
    held_out = trajectory.Windows.cut(*validation_states, training.window, device)
    substeps = training.rollout_substeps
    offset = training.log_offset if error_model == "relative" else None
    shooting = trajectory.Shooting(windows, delta_t, substeps, training.fit_window_starts, offset)
    scoring = trajectory.Shooting(held_out, delta_t, substeps, fit_starts=False, log_offset=offset)
    generator = torch.Generator(device="cpu").manual_seed(training.seed)
    per_batch = max(1, training.batch_size // training.window)

    log_k = getattr(model, "log_k", None) if getattr(training, "rate_prior", False) else None
    prior = trajectory.RatePrior(log_k, shooting, train_states[0])

    def batch_loss(step: int) -> Tensor:
        index = torch.randint(len(windows), (per_batch,), generator=generator).to(device)
        return shooting.loss(model, index) + model.penalty(windows.readings[index, 0], training) + prior()

    def full(loss: trajectory.Shooting) -> float:
        with torch.no_grad():
            return float(loss.loss(model, slice(None)))

    def shooting_loss_and_backward() -> Tensor:
        loss = shooting.loss(model, slice(None)) + model.penalty(windows.readings[:, 0], training) + prior()
        if torch.isfinite(loss):
            loss.backward()
        return loss.detach()

    def refine(history: dict[str, list[float]]) -> int:
        prior.estimate()
        parameters = [p for p in [*model.parameters(), shooting.starts] if p.requires_grad]
        residuals = lambda: iter([shooting.residuals(model, slice(None))])  # noqa: E731
        curvature = _gauss_newton_diagonal(residuals, training.seed)
        return _lbfgs(parameters, training, history, progress, shooting_loss_and_backward, curvature)

    groups = model.param_groups(training)
    if training.fit_window_starts:
        groups.append(
            {"name": "window_starts", "params": [shooting.starts], "lr": training.learning_rate_start}
        )
    objective = Objective(
        batch_loss=batch_loss,
        train_loss=lambda: full(shooting),
        held_out_loss=lambda: full(scoring),
        refine=refine,
        frames_per_step=per_batch * training.window,
        total_steps=math.ceil(len(windows) * training.data_augmentation_loop / per_batch) * training.n_epochs,
        name="trajectory",
    )
    return _fit(model, groups, objective, training, progress)


def train_dynamics(
    model: DynamicsModel, observations: Observations, training: TrainingBase, *, progress: bool = True
) -> TrainResult:
    """Fit a dynamics model with the configured objective; ``auto`` chooses it from the training readings
    (:func:`.trajectory.choose_objective`), and the result records which one ran."""
    objective = getattr(training, "objective", "derivative")  # a system without the noise objectives
    delta_t = float(getattr(observations, "delta_t", 0.0))
    if objective == "auto":
        objective = trajectory.choose_objective(observations.trajectories("train")[0], delta_t)
    if objective == "derivative":
        return train(
            model,
            observations.frames("train"),
            observations.frames("validation"),
            training,
            progress=progress,
            state_noise=getattr(training, "noise_model_level", 0.0),  # signal: seed 003's augmentation
        )
    train_states, validation_states = (
        observations.trajectories("train"),
        observations.trajectories("validation"),
    )
    # targets near pools below the noise floor are masked (the floor estimated from the training readings)
    floor = trajectory.noise_floor(train_states[0])
    stoichiometry = getattr(observations, "stoichiometry", None)
    train_frames, validation_frames = (
        trajectory.smoothed_frames(
            *states, delta_t, training.smoothing_window, stoichiometry=stoichiometry, floor=floor
        )
        for states in (train_states, validation_states)
    )
    if objective == "trajectory":
        errors = training.error_model
        if errors == "auto":
            errors = trajectory.error_model(train_states[0])
        # the shooting loss is far from convex for a model that does not yet oscillate like the data: an
        # Adam pass on smoothed derivatives first puts the model in the basin that shooting then refines
        warm = train(
            model,
            train_frames,
            validation_frames,
            training.model_copy(update={"lbfgs_iterations": 0}),
            progress=progress,
            name="trajectory",
        )
        if warm.status != "ok":
            return warm
        result = train_shooting(
            model, train_states, validation_states, training, delta_t, errors, progress=progress
        )
        return dataclasses.replace(
            result, training_time_s=result.training_time_s + warm.training_time_s, error_model=errors
        )
    return train(model, train_frames, validation_frames, training, progress=progress, name=objective)


# system -> train(model, observations, training, *, progress) returning a result with ``status``,
# ``message``, ``training_time_s``, ``history`` and ``summary()`` (what the run record reports)
# projection.py builds on the driver above, so it is imported once that is defined
from gnnlab.training.flyvis import train_flyvis  # noqa: E402
from gnnlab.training.projection import train_signal  # noqa: E402

TRAINERS: dict[str, Callable[..., Any]] = {
    "metabolism": train_dynamics,
    "perturbation": perturbation.train,
    "signal": train_signal,
    "flyvis": train_flyvis,
}
