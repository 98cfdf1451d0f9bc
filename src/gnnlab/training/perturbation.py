"""Training a perturbation-effect predictor: mini-batches of training knock-downs, Riemannian Adam for the
points on the manifold, AdamW for everything else, and a hard stop on the first non-finite number.

The prior system's NaNs came from a NaN *gradient* at the first step that no learning rate could cure and
no forward-only check could see; here the loss and every gradient are checked before each update, and the
first non-finite one ends the run as ``failed: diverged`` with the step and the tensor named.
"""

import dataclasses
import math
import time
from typing import Any

import geoopt
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from gnnlab.config.perturbation import PerturbationTraining
from gnnlab.errors import TrainingDiverged
from gnnlab.models.perturbation import PerturbationEnsemble, PerturbationGNN, PerturbationMLP, member_seed
from gnnlab.systems.perturbation.simulator import PerturbationObservations


@dataclasses.dataclass
class PerturbationTrainResult:
    status: str  # "ok" or "failed: diverged"
    message: str
    final_loss: float | None  # mean squared error over every training knock-down at the end
    training_time_s: float
    optimiser_steps: int
    history: dict[str, list[float]]

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "history"}


def optimisers(
    model: PerturbationGNN | PerturbationMLP, training: PerturbationTraining
) -> list[torch.optim.Optimizer]:
    """Riemannian Adam for manifold parameters, AdamW for Euclidean ones (curvature at its own rate and
    without weight decay, which would pull it towards flat space)."""
    on_manifold = [p for p in model.parameters() if isinstance(p, geoopt.ManifoldParameter)]
    curvature = [p for n, p in model.named_parameters() if n.startswith("manifold.") and p.requires_grad]
    taken = {id(p) for p in on_manifold + curvature}
    euclidean = [p for p in model.parameters() if id(p) not in taken and p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": euclidean, "lr": training.learning_rate}]
    if curvature:
        groups.append({"params": curvature, "lr": training.learning_rate_curvature, "weight_decay": 0.0})
    result: list[torch.optim.Optimizer] = [torch.optim.AdamW(groups, weight_decay=training.weight_decay)]
    if on_manifold:
        lr_ball = training.learning_rate_ball or training.learning_rate
        result.append(geoopt.optim.RiemannianAdam(on_manifold, lr=lr_ball))
    return result


def check_finite(model: PerturbationGNN | PerturbationMLP, loss: Tensor, step: int) -> None:
    """Raise :class:`TrainingDiverged` naming the first non-finite loss or gradient."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"loss is {loss.item()} at step {step}")
    for name, parameter in model.named_parameters():
        if parameter.grad is not None and not torch.isfinite(parameter.grad).all():
            raise TrainingDiverged(f"gradient of {name} is non-finite at step {step}")


def train(
    model: PerturbationGNN | PerturbationMLP | PerturbationEnsemble,
    observations: PerturbationObservations,
    training: PerturbationTraining,
    *,
    progress: bool = True,
) -> PerturbationTrainResult:
    """Fit ``model`` to the measured effects of the training knock-downs, in place; never raises on
    divergence (the result says so instead)."""
    if isinstance(model, PerturbationEnsemble):
        return train_ensemble(model, observations, training, progress=progress)
    if training.n_threads:
        torch.set_num_threads(training.n_threads)
    labels, effects = observations.effects()
    knocked = torch.as_tensor(observations.gene_index(labels))
    targets = torch.as_tensor(effects)
    generator = torch.Generator().manual_seed(training.seed)
    steppers = optimisers(model, training)
    history: dict[str, list[float]] = {"loss": [], "epoch_loss": [], "curvature": []}
    start = time.perf_counter()
    step = 0
    try:
        for _ in tqdm(range(training.n_epochs), desc="train", unit="epoch", disable=not progress):
            for batch in torch.randperm(len(labels), generator=generator).split(training.batch_size):
                loss = torch.mean((model.predict(knocked[batch]) - targets[batch]) ** 2)
                for optimiser in steppers:
                    optimiser.zero_grad(set_to_none=True)
                loss.backward()
                check_finite(model, loss.detach(), step)
                if training.grad_clip_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip_norm)
                for optimiser in steppers:
                    optimiser.step()
                history["loss"].append(loss.item())
                step += 1
            history["epoch_loss"].append(full_loss(model, knocked, targets))
            if isinstance(model, PerturbationGNN):
                history["curvature"].append(model.curvature)
    except TrainingDiverged as exc:
        return PerturbationTrainResult(
            status="failed: diverged",
            message=str(exc),
            final_loss=None,
            training_time_s=time.perf_counter() - start,
            optimiser_steps=step,
            history=history,
        )
    final = full_loss(model, knocked, targets)
    if not math.isfinite(final):
        return PerturbationTrainResult(
            "failed: diverged", f"final loss is {final}", None, time.perf_counter() - start, step, history
        )
    return PerturbationTrainResult("ok", "", final, time.perf_counter() - start, step, history)


def train_ensemble(
    ensemble: PerturbationEnsemble,
    observations: PerturbationObservations,
    training: PerturbationTraining,
    *,
    progress: bool = True,
) -> PerturbationTrainResult:
    """Train the members one after another, member k with batch order from ``member_seed(seed, k)`` (its
    initialisation came from the same seed), each under :func:`train`'s non-finite checks; the first member
    that diverges ends the run, named. Times and steps are summed over members; the history is member 0's
    (what the loss plot shows) plus each finished member's final loss; ``final_loss`` is the ensemble's."""
    results = []
    for k, member in enumerate(ensemble.members):
        own = training.model_copy(update={"seed": member_seed(training.seed, k)})
        results.append(train(member, observations, own, progress=progress))
        if results[-1].status != "ok":
            break
    seconds = sum(r.training_time_s for r in results)
    steps = sum(r.optimiser_steps for r in results)
    history = {**results[0].history, "member_final_loss": [r.final_loss for r in results if r.status == "ok"]}
    last = results[-1]
    if last.status != "ok":
        message = f"ensemble member {len(results) - 1}: {last.message}"
        return PerturbationTrainResult(last.status, message, None, seconds, steps, history)
    labels, effects = observations.effects()
    knocked = torch.as_tensor(observations.gene_index(labels))
    final = full_loss(ensemble, knocked, torch.as_tensor(effects))
    return PerturbationTrainResult("ok", "", final, seconds, steps, history)


def full_loss(
    model: PerturbationGNN | PerturbationMLP | PerturbationEnsemble, knocked: Tensor, targets: Tensor
) -> float:
    """Mean squared error over every training knock-down, without gradients."""
    with torch.no_grad():
        return float(np.mean(((model.predict(knocked) - targets) ** 2).numpy()))
