"""Variable projection for dynamics that are linear in their edge weights (the signal model).

Why: du_i/dt = f_theta(u_i) + sum_j W_ij g_phi(u_j) is linear in W. Trained jointly by gradient steps, W
(thousands of weights) and the two small networks chase each other along a badly conditioned valley: on 30
neurons Adam + L-BFGS stopped at connectivity R^2 0.66-0.86, while least squares with the true functions
recovers W exactly from the same frames. Variable projection (Golub & Pereyra) eliminates W: for the current
f_theta and g_phi, each row of W is the ridge least-squares fit of the residual du_i/dt - f_theta(u_i) on
the features g_phi(u_j) of its candidate sources, and the optimisers descend the loss *of that solution*
with respect to theta, phi and the embeddings only (gradients flow through the solve). The per-node loss
weights scale whole rows, so they do not change the row-wise solution.

Rows whose candidates are every other neuron share one Gram matrix: the fit without feature i is the full
fit corrected by one rank-one term (the Schur complement of the inverse), so a dense W costs one N x N
inverse. Any other support solves one masked system per row.
"""

import dataclasses

import torch
from torch import Tensor

from gnnlab.config.signal import SignalTraining
from gnnlab.models.signal import SignalModel
from gnnlab.systems import Observations
from gnnlab.training import (
    FrameTensors,
    Objective,
    TrainResult,
    _fit,
    _lbfgs,
    _prepare,
    full_loss,
    loss_weights,
    train_dynamics,
)


def solve_weights(
    features: Tensor, residual: Tensor, candidates: Tensor, ridge: float, rows: Tensor | None = None
) -> Tensor:
    """Dense [target, source] W minimising ||residual - features W^T||^2 + ridge ||W||^2 row by row, each
    row over its candidate sources only (zero elsewhere). ``features``: (B, N); ``residual``: (B, N), or
    (B, K) for the K target neurons ``rows`` only, and then the result is their (K, N) rows, in float64.

    The Gram matrix and the solve are float64 whatever the inputs: its condition number is the square of
    the features', and chaotic activity at N = 1000 gives features of condition ~2e4, a Gram of ~4e8,
    beyond float32 (the true functions' least squares then scored connectivity R^2 below 0 in float32,
    1.0000 in float64; bench/signal_oracle_fit.py)."""
    features, residual = features.double(), residual.double()
    n_frames, n = features.shape
    eye = torch.eye(n, dtype=features.dtype, device=features.device)
    gram = features.T @ features / n_frames + ridge * eye
    cross = residual.T @ features / n_frames  # row i: <residual_i, g_j>
    if rows is None:
        rows = torch.arange(n, device=features.device)
    candidates = candidates[rows]
    if torch.equal(candidates, ~eye[rows].bool()):
        inverse = torch.linalg.inv(gram)
        full = cross @ inverse
        self_weight = full.gather(1, rows[:, None]) / inverse.diagonal()[rows, None]
        return (full - self_weight * inverse[rows]).where(candidates, 0.0)
    pair = candidates[:, :, None] & candidates[:, None, :]
    systems = torch.where(pair, gram, eye)  # a row's non-candidates become decoupled unit equations
    return torch.linalg.solve(systems, cross * candidates).where(candidates, 0.0)


def projected_loss(
    model: SignalModel, frames: FrameTensors, weights: Tensor, ridge: float, rows: Tensor | None = None
) -> Tensor:
    """The weighted derivative loss at the least-squares W of these frames (differentiable in the rest),
    over the target neurons ``rows`` only when given (f_theta is then evaluated for those alone)."""
    features = model.g_phi(frames.states)
    if rows is None:
        residual = frames.targets - model.intrinsic(frames.states, frames.inputs)
    else:
        residual = frames.targets[:, rows] - model.intrinsic(frames.states, frames.inputs, rows)
        weights = weights[rows]
    dtype = residual.dtype
    # float64 once, for the solve and for the fit's residual (a small difference of large terms near the
    # solution); solve_weights' own conversion is then a no-op
    features, residual = features.double(), residual.double()
    dense = solve_weights(features, residual, model.candidates(), ridge, rows)
    return (((residual - features @ dense.T) ** 2) * weights).mean().to(dtype)


def train_projection(
    model: SignalModel, observations: Observations, training: SignalTraining, *, progress: bool = True
) -> TrainResult:
    """Adam on random frame batches, then full-batch L-BFGS, both on the projected loss; W is then solved on
    every training frame and written into the model, so the result is an ordinary model."""
    device = _prepare(model, training)
    data = FrameTensors.from_frames(observations.frames("train"), device)
    held_out = FrameTensors.from_frames(observations.frames("validation"), device)
    if not bool(data.mask.all()):
        raise ValueError("the projection needs every frame observed (no masked entries)")
    weights = loss_weights(data, training.loss_normalisation)
    generator = torch.Generator(device="cpu").manual_seed(training.seed)
    batch_frames = min(len(data), training.projection_batch_frames)
    n = data.states.shape[1]
    batch_neurons = min(n, training.projection_batch_neurons or n)

    def draw_rows() -> Tensor | None:
        if batch_neurons == n:
            return None
        return torch.randperm(n, generator=generator)[:batch_neurons].sort().values.to(device)

    def batch_loss(step: int) -> Tensor:
        index = torch.randperm(len(data), generator=generator)[:batch_frames].to(device)
        batch = data.batch(index)
        if training.noise_model_level > 0:
            noise = torch.randn(batch.states.shape, generator=generator).to(device)
            batch = dataclasses.replace(batch, states=batch.states + training.noise_model_level * noise)
        return projected_loss(model, batch, weights, training.ridge, draw_rows())

    # the L-BFGS loss must be deterministic: fixed frames (all by default) and fixed target neurons
    lbfgs_data, lbfgs_rows = data, draw_rows()
    if training.projection_lbfgs_frames and training.projection_lbfgs_frames < len(data):
        index = torch.randperm(len(data), generator=generator)[: training.projection_lbfgs_frames]
        lbfgs_data = data.batch(index.sort().values.to(device))

    def solve_on_all_frames() -> None:
        with torch.no_grad():
            features = model.g_phi(data.states)
            residual = data.targets - model.intrinsic(data.states, data.inputs)
            dense = solve_weights(features, residual, model.candidates(), training.ridge)
            model.set_dense_weights(dense.to(features.dtype))

    def held_out_loss() -> float:
        solve_on_all_frames()
        return full_loss(model, held_out, weights)

    def loss_and_backward() -> Tensor:
        loss = projected_loss(model, lbfgs_data, weights, training.ridge, lbfgs_rows)
        if torch.isfinite(loss):
            loss.backward()
        return loss.detach()

    def refine(history: dict[str, list[float]]) -> int:
        rest = [p for p in model.parameters() if p is not model.W and p.requires_grad]
        done = _lbfgs(rest, training, history, progress, loss_and_backward)
        solve_on_all_frames()
        return done

    objective = Objective(
        batch_loss=batch_loss,
        train_loss=lambda: full_loss(model, data, weights),
        held_out_loss=held_out_loss,
        refine=refine,
        frames_per_step=batch_frames,
        total_steps=training.projection_steps,
        name="projection",
        n_validations=training.projection_validations,
    )
    groups = [g for g in model.param_groups(training) if g["name"] != "W"]
    return _fit(model, groups, objective, training, progress)


def train_signal(
    model: SignalModel, observations: Observations, training: SignalTraining, *, progress: bool = True
) -> TrainResult:
    """The signal trainer: variable projection, or the shared dynamics trainer (``W_solver: gradient``)."""
    if training.W_solver == "projection":
        return train_projection(model, observations, training, progress=progress)
    return train_dynamics(model, observations, training, progress=progress)


__all__ = ["projected_loss", "solve_weights", "train_projection", "train_signal"]
