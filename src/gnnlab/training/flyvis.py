"""Variable projection on a sparse known support (the flyvis model): W and the input gains by per-neuron
least squares, the optimisers on f_theta and the embeddings only.

Why not :mod:`.projection` as it is: its masked solve builds an N x N system per neuron (N^3 memory), fine
for 100 neurons and impossible for 13,741. Here each neuron i has its own small design matrix: the ReLU
of its presynaptic partners (in-degree 15-200), its input I_i, its own voltage and a constant (the affine
part of f_theta, whose constant is the intercept). Neurons are grouped by in-degree into
buckets padded to a power of two, so one batched solve handles a bucket; padded columns are zero and the
ridge makes their weight exactly zero.

Gradients use the variable-projection envelope: at the least-squares W*(theta) the derivative of the
projected loss with respect to theta equals the partial derivative at fixed W* (its partial derivative
in W is zero there; exact up to the ridge term). So each loss evaluation solves W* without autograd
over frame chunks, writes it into the model, and differentiates the ordinary weighted derivative loss
chunk by chunk: memory does not grow with the number of frames.
"""

import dataclasses

import torch
from torch import Tensor

from gnnlab.config.flyvis import FlyVisTraining
from gnnlab.models.flyvis import FlyVisModel
from gnnlab.systems import Observations
from gnnlab.training import (
    FrameTensors,
    Objective,
    TrainResult,
    _fit,
    _frames_loss_and_backward,
    _lbfgs,
    _prepare,
    data_loss,
    full_loss,
    loss_weights,
    train_dynamics,
)

SOLVE_CHUNK = 256  # frames per Gram accumulation (memory ~ chunk x sum of padded in-degrees)


@dataclasses.dataclass(frozen=True)
class Bucket:
    """Neurons whose in-degree + 1 (the input column) fits ``width``: their padded source table."""

    targets: Tensor  # (n,) neuron index
    sources: Tensor  # (n, width - 1) presynaptic neuron, N (a zero column) where padded
    edges: Tensor  # (n, width - 1) edge index into W, -1 where padded


def buckets(edge_index: Tensor, n_neurons: int) -> list[Bucket]:
    """Group neurons by in-degree into power-of-two widths; every neuron lands in exactly one bucket."""
    source, target = edge_index.cpu()
    order = torch.argsort(target, stable=True)
    degree = torch.bincount(target, minlength=n_neurons)
    start = torch.cumsum(degree, 0) - degree
    slot = torch.arange(len(order)) - start[target[order]]
    width = 2 ** torch.ceil(torch.log2(degree.double() + 1)).long()
    result = []
    for w in torch.unique(width).tolist():
        members = torch.nonzero(width == w).squeeze(1)
        row = torch.full((n_neurons,), -1, dtype=torch.long)
        row[members] = torch.arange(len(members))
        edges = torch.full((len(members), w - 1), -1, dtype=torch.long)
        in_bucket = row[target[order]] >= 0
        picked = order[in_bucket]
        edges[row[target[picked]], slot[in_bucket]] = picked
        sources = torch.where(edges >= 0, source[edges.clamp_min(0)], n_neurons)
        result.append(Bucket(members, sources, edges))
    return result


AFFINE = 2  # columns after the sources: input I_i, own voltage v_i (for -l_i); c_i comes from the means
EMPTY = 1e-10  # a column whose variance is below this share of its mean square carries no information


def _design(bucket: Bucket, states: Tensor, inputs: Tensor) -> Tensor:
    """(B, n, width - 1 + AFFINE): ReLU of each neuron's sources (0 where padded), its input, v_i."""
    features = torch.relu(states)
    padded = torch.cat([features, features.new_zeros(features.shape[0], 1)], dim=1)
    return torch.cat(
        [padded[:, bucket.sources], inputs[:, bucket.targets, None], states[:, bucket.targets, None]], dim=-1
    )


@torch.no_grad()
def solve_weights(model: FlyVisModel, frames: FrameTensors, parts: list[Bucket], ridge: float) -> None:
    """Write into ``model`` the W, input gains, leaks and offsets that minimise, neuron by neuron, the
    squared error of the residual dv/dt - MLP(v) on ``frames``.

    The columns are centred (the offset is the unpenalised intercept) and the ridge is relative: ``ridge``
    times each column's variance, so it shrinks every weight alike whatever its presynaptic cell's scale.
    A cell nearly at rest has a voltage column with a large mean and a tiny variance; an absolute ridge on
    uncentred columns shrank exactly the direction that carries its leak. Sums are float64: centring by
    subtraction (E[x^2] - E[x]^2) loses float32's digits on such columns.
    """
    device = model.W.device
    stats = []
    for bucket in parts:
        n, width = len(bucket.targets), bucket.sources.shape[1] + AFFINE
        zeros = torch.zeros
        stats.append(
            [
                zeros(n, width, width, dtype=torch.float64),
                zeros(n, width, dtype=torch.float64),
                zeros(n, width, dtype=torch.float64),
                zeros(n, dtype=torch.float64),
            ]
        )
    for chunk in frames.chunks(SOLVE_CHUNK):
        residual = (chunk.targets - model.nonlinear(chunk.states)).double()
        for bucket, (gram, cross, total_x, total_r) in zip(parts, stats, strict=True):
            design = _design(bucket, chunk.states, chunk.inputs).double()
            own = residual[:, bucket.targets]
            gram += torch.einsum("bnd,bne->nde", design, design).cpu()
            cross += torch.einsum("bnd,bn->nd", design, own).cpu()
            total_x += design.sum(0).cpu()
            total_r += own.sum(0).cpu()
    gains = model.gains().detach().cpu()
    w = model.W.detach().cpu().clone()
    leak, offset = model.leak.detach().cpu().clone(), model.offset.detach().cpu().clone()
    for bucket, (gram, cross, total_x, total_r) in zip(parts, stats, strict=True):
        mean_x, mean_r = total_x / len(frames), total_r / len(frames)
        covariance = gram / len(frames) - mean_x[:, :, None] * mean_x[:, None, :]
        covariance_r = cross / len(frames) - mean_x * mean_r[:, None]
        variance = covariance.diagonal(dim1=-2, dim2=-1)
        # padded columns, the input column of a cell without input and constant columns carry nothing: a
        # unit diagonal decouples them and their weight is exactly 0, even at ridge 0
        empty = variance <= EMPTY * (gram.diagonal(dim1=-2, dim2=-1) / len(frames)).clamp_min(1e-30)
        system = covariance + torch.diag_embed(ridge * variance.clamp_min(0) + empty.double())
        solution = torch.linalg.solve(system, torch.where(empty, 0.0, covariance_r))
        valid = bucket.edges >= 0
        w[bucket.edges[valid]] = solution[:, :-AFFINE][valid].float()
        gains[bucket.targets] = solution[:, -2].float()
        leak[bucket.targets] = -solution[:, -1].float()
        offset[bucket.targets] = (mean_r - (mean_x * solution).sum(-1)).float()
    model.W.copy_(w.to(device))
    model.leak.copy_(leak.to(device))
    model.offset.copy_(offset.to(device))
    model.input_gain.copy_(gains[model.input_cells.cpu()].to(device))


def train_projection(
    model: FlyVisModel, observations: Observations, training: FlyVisTraining, *, progress: bool = True
) -> TrainResult:
    """Adam on random frame batches, then full-batch L-BFGS, each loss at the freshly solved W; W is finally
    solved on every training frame, so the result is an ordinary model."""
    device = _prepare(model, training)
    data = FrameTensors.from_frames(observations.frames("train"), device)
    held_out = FrameTensors.from_frames(observations.frames("validation"), device)
    weights = loss_weights(data, training.loss_normalisation)
    parts = [
        dataclasses.replace(b, **{k: getattr(b, k).to(device) for k in ("targets", "sources")})
        for b in buckets(model.edge_index, model.n_neurons)
    ]
    generator = torch.Generator(device="cpu").manual_seed(training.seed)
    batch_frames = min(len(data), training.projection_batch_frames)
    groups = [g for g in model.param_groups(training) if g["name"] != "W"]
    solved = (model.W, model.input_gain, model.leak, model.offset)
    for parameter in solved:
        parameter.requires_grad_(False)

    def batch_loss(step: int) -> Tensor:
        batch = data.batch(torch.randperm(len(data), generator=generator)[:batch_frames].to(device))
        solve_weights(model, batch, parts, training.ridge)
        return data_loss(model, batch, weights)

    def held_out_loss() -> float:
        solve_weights(model, data, parts, training.ridge)
        return full_loss(model, held_out, weights)

    whole = _frames_loss_and_backward(model, data, weights, training)

    def loss_and_backward() -> Tensor:
        solve_weights(model, data, parts, training.ridge)
        return whole()

    def refine(history: dict[str, list[float]]) -> int:
        rest = [p for g in groups for p in g["params"]]
        done = _lbfgs(rest, training, history, progress, loss_and_backward)
        solve_weights(model, data, parts, training.ridge)
        return done

    objective = Objective(
        batch_loss=batch_loss,
        train_loss=lambda: full_loss(model, data, weights),
        held_out_loss=held_out_loss,
        refine=refine,
        frames_per_step=batch_frames,
        total_steps=training.projection_steps,
        name="projection",
    )
    try:
        return _fit(model, groups, objective, training, progress)
    finally:
        for parameter in solved:
            parameter.requires_grad_(True)


def train_flyvis(
    model: FlyVisModel, observations: Observations, training: FlyVisTraining, *, progress: bool = True
) -> TrainResult:
    """The flyvis trainer: sparse variable projection, or the shared dynamics trainer (``W_solver:
    gradient``)."""
    if training.W_solver == "projection":
        return train_projection(model, observations, training, progress=progress)
    return train_dynamics(model, observations, training, progress=progress)


__all__ = ["buckets", "solve_weights", "train_flyvis", "train_projection"]
