"""Trainers, one per kind of model, registered by system in :data:`TRAINERS`.

This module holds the dynamics trainer (metabolism's): Adam on mini-batches of frames, then an optional
full-batch L-BFGS refinement. :mod:`.perturbation` trains perturbation-effect predictors.

Training sees :class:`~gnnlab.systems.Frames` built from observations and nothing else: this module imports
no evaluation code and no ground-truth loader (``tests/test_leakage.py`` holds it to that).

Why two phases: Adam with per-group learning rates finds the basin quickly from any initialisation but
stalls at a noise floor set by its mini-batches; the data are deterministic and the models small, so a
full-batch quasi-Newton method then converges to the minimum instead of hovering near it.
"""

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from gnnlab.config import TrainingBase
from gnnlab.errors import TrainingDiverged
from gnnlab.models import DynamicsModel
from gnnlab.systems import Frames, Observations
from gnnlab.training import perturbation

FULL_BATCH_CHUNK = 4096  # frames per forward pass when a step uses every frame


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

    def chunks(self, size: int = FULL_BATCH_CHUNK):
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


def train(
    model: DynamicsModel,
    train_frames: Frames,
    validation_frames: Frames,
    training: TrainingBase,
    *,
    progress: bool = True,
) -> TrainResult:
    """Fit ``model`` to the frames in place; never raises on divergence (the result says so instead)."""
    if training.n_threads:
        torch.set_num_threads(training.n_threads)
    device = resolve_device(training.device)
    model.to(device)
    data = FrameTensors.from_frames(train_frames, device)
    held_out = FrameTensors.from_frames(validation_frames, device)
    weights = loss_weights(data, training.loss_normalisation)
    generator = torch.Generator(device="cpu").manual_seed(training.seed)

    steps_per_epoch = math.ceil(len(data) * training.data_augmentation_loop / training.batch_size)
    total_steps = steps_per_epoch * training.n_epochs
    # >>> explore-region: optimizer (an agent with explore.allow_code_edits may rewrite these lines only)
    optimizer = torch.optim.Adam(model.param_groups(training))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(training, total_steps))
    # <<< explore-region: optimizer
    history: dict[str, list[float]] = {"loss": [], "val_step": [], "val_loss": [], "lbfgs_loss": []}
    eval_every = max(1, total_steps // 20)

    start = time.perf_counter()
    step = 0
    try:
        bar = tqdm(
            total=total_steps, desc="train (Adam)", unit="step", disable=not progress, dynamic_ncols=True
        )
        with bar:
            for step in range(total_steps):
                index = torch.randint(len(data), (training.batch_size,), generator=generator).to(device)
                batch = data.batch(index)
                loss = data_loss(model, batch, weights) + model.penalty(batch.states, training)
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
                    history["val_loss"].append(full_loss(model, held_out, weights))
                    bar.set_postfix(loss=f"{value:.3g}", val=f"{history['val_loss'][-1]:.3g}")
                bar.update()
        adam_time = time.perf_counter() - start
        lbfgs_done = _refine_lbfgs(model, data, weights, training, history, progress)
    except TrainingDiverged as exc:
        elapsed = time.perf_counter() - start
        return TrainResult(
            status="failed: diverged",
            message=str(exc),
            adam_steps=step,
            lbfgs_iterations=len(history["lbfgs_loss"]),
            final_loss=None,
            val_loss=None,
            frames_per_second=step * training.batch_size / max(elapsed, 1e-9),
            training_time_s=elapsed,
            history=history,
        )
    return TrainResult(
        status="ok",
        message="",
        adam_steps=total_steps,
        lbfgs_iterations=lbfgs_done,
        final_loss=full_loss(model, data, weights),
        val_loss=full_loss(model, held_out, weights),
        frames_per_second=total_steps * training.batch_size / max(adam_time, 1e-9),
        training_time_s=time.perf_counter() - start,
        history=history,
    )


def _refine_lbfgs(
    model: DynamicsModel,
    data: FrameTensors,
    weights: Tensor,
    training: TrainingBase,
    history: dict[str, list[float]],
    progress: bool,
) -> int:
    """Full-batch L-BFGS with a strong-Wolfe line search on data loss + penalties; returns iterations run."""
    if training.lbfgs_iterations == 0:
        return 0
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=training.lbfgs_iterations,
        max_eval=2 * training.lbfgs_iterations,
        history_size=50,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    n_valid = data.mask.sum().clamp_min(1.0)
    bar = tqdm(desc="refine (L-BFGS)", unit="eval", disable=not progress, dynamic_ncols=True)

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=data.states.device)
        for chunk in data.chunks():
            part = data_loss(model, chunk, weights) * chunk.mask.sum() / n_valid
            part.backward()
            total = total + part.detach()
        penalty = model.penalty(data.states[: training.batch_size], training)
        if penalty.requires_grad:
            penalty.backward()
        loss = (total + penalty.detach()).item()
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss} during L-BFGS evaluation {len(history['lbfgs_loss'])}")
        history["lbfgs_loss"].append(loss)
        bar.set_postfix(loss=f"{loss:.3g}")
        bar.update()
        return total + penalty.detach()

    with bar:
        optimizer.step(closure)
    return int(optimizer.state[params[0]].get("n_iter", 0))


def train_dynamics(
    model: DynamicsModel, observations: Observations, training: TrainingBase, *, progress: bool = True
) -> TrainResult:
    """:func:`train` on the observations' training and held-out frames."""
    return train(
        model, observations.frames("train"), observations.frames("validation"), training, progress=progress
    )


# system -> train(model, observations, training, *, progress) returning a result with ``status``,
# ``message``, ``training_time_s``, ``history`` and ``summary()`` (what the run record reports)
TRAINERS: dict[str, Callable[..., Any]] = {"metabolism": train_dynamics, "perturbation": perturbation.train}
