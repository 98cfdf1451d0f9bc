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
import warnings

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


class NormalEquations:
    """Every neuron's least-squares system on one frame set, factorised once.

    The design (ReLU of the sources, input, own voltage) depends on the frames alone, not on f_theta: its
    centred Gram and Cholesky factors are built once per frame set, and each solve needs only the cross
    products with the residual dv/dt - MLP(v). At extent 8 the Gram costs frames x 60 M products (the
    squared padded in-degrees, 31 s once), the cross products frames x 0.43 M (the edges, 0.7 s).

    The columns are centred (the offset is the unpenalised intercept) and the ridge is relative: ``ridge``
    times each column's variance, so it shrinks every weight alike whatever its presynaptic cell's scale.
    A cell nearly at rest has a voltage column with a large mean and a tiny variance; an absolute ridge on
    uncentred columns shrank exactly the direction that carries its leak. Every sum is float64: centring by
    subtraction (E[x^2] - E[x]^2, E[x r] - E[x] E[r]) loses float32's digits on such columns.
    """

    @torch.no_grad()
    def __init__(self, frames: FrameTensors, edge_index: Tensor, parts: list[Bucket], ridge: float):
        self.frames, self.parts = frames, parts
        grams, totals = [], []
        for bucket in parts:
            n, width = len(bucket.targets), bucket.sources.shape[1] + AFFINE
            grams.append(torch.zeros(n, width, width, dtype=torch.float64))
            totals.append(torch.zeros(n, width, dtype=torch.float64))
        for chunk in frames.chunks(SOLVE_CHUNK):
            for bucket, gram, total in zip(parts, grams, totals, strict=True):
                design = _design(bucket, chunk.states, chunk.inputs).double()
                gram += torch.einsum("bnd,bne->nde", design, design).cpu()
                total += design.sum(0).cpu()
        # the connectome's pattern, rows presynaptic j and columns postsynaptic i, as CSR for the sampled
        # product; its values carry each entry's edge number, which CSR order does not keep
        source, target = (index.to(frames.states.device) for index in edge_index)
        numbered = torch.arange(1, len(source) + 1, dtype=torch.float64, device=source.device)
        n = frames.states.shape[1]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            coo = torch.sparse_coo_tensor(
                torch.stack([source, target]), numbered, (n, n), check_invariants=False
            )
            self.pattern = coo.to_sparse_csr()
        self.pattern_edge = self.pattern.values().long() - 1
        self.presynaptic = torch.relu(frames.states).T.double().contiguous()  # (N, frames)
        self.own = torch.stack([frames.inputs, frames.states], -1).double()  # (frames, N, AFFINE)
        self.means, self.empty, self.factors = [], [], []
        for gram, total in zip(grams, totals, strict=True):
            mean = total / len(frames)
            covariance = gram / len(frames) - mean[:, :, None] * mean[:, None, :]
            variance = covariance.diagonal(dim1=-2, dim2=-1)
            # padded columns, the input column of a cell without input and constant columns carry nothing:
            # a unit diagonal decouples them and their weight is exactly 0, even at ridge 0
            empty = variance <= EMPTY * (gram.diagonal(dim1=-2, dim2=-1) / len(frames)).clamp_min(1e-30)
            system = covariance + torch.diag_embed(ridge * variance.clamp_min(0) + empty.double())
            self.means.append(mean)
            self.empty.append(empty)
            # Cholesky, not LU: the system is symmetric positive definite, and torch 2.13's batched LU of
            # matrices wider than 256 hangs on 2 MKL threads (DLASWP "parameter 6 incorrect")
            self.factors.append(torch.linalg.cholesky(system))

    @torch.no_grad()
    def solve(self, model: FlyVisModel) -> None:
        """Write into ``model`` the W, input gains, leaks and offsets that minimise, neuron by neuron, the
        squared error of the residual r = dv/dt - MLP(v) on the frames.

        The right-hand sides are centred cross products sum_t (x_t - mean x) r_t = sum_t x_t r_t - mean x
        sum_t r_t, in float64. For the presynaptic columns sum_t ReLU(v_tj) r_ti is wanted on the edges
        (j, i) only: one sampled matrix product over the connectome's pattern, with no design matrix built.
        """
        device = model.W.device
        residual = torch.cat(
            [chunk.targets - model.nonlinear(chunk.states) for chunk in self.frames.chunks(SOLVE_CHUNK)]
        ).double()
        on_pattern = torch.sparse.sampled_addmm(self.pattern, self.presynaptic, residual, beta=0.0).values()
        presynaptic = torch.empty_like(on_pattern).index_put_((self.pattern_edge,), on_pattern).cpu()
        own = (self.own * residual[..., None]).sum(0).cpu()  # (N, AFFINE): input and own-voltage columns
        total_r = residual.sum(0).cpu()
        gains = model.gains().detach().cpu()
        w = model.W.detach().cpu().clone()
        leak, offset = model.leak.detach().cpu().clone(), model.offset.detach().cpu().clone()
        for bucket, mean, empty, factor in zip(self.parts, self.means, self.empty, self.factors, strict=True):
            targets, valid = bucket.targets.cpu(), bucket.edges >= 0
            raw = torch.zeros_like(mean)
            raw[:, :-AFFINE][valid] = presynaptic[bucket.edges[valid]]
            raw[:, -AFFINE:] = own[targets]
            sum_r = total_r[targets]
            rhs = torch.where(empty, 0.0, (raw - mean * sum_r[:, None]) / len(self.frames))
            solution = torch.cholesky_solve(rhs.unsqueeze(-1), factor).squeeze(-1)
            w[bucket.edges[valid]] = solution[:, :-AFFINE][valid].float()
            gains[targets] = solution[:, -2].float()
            leak[targets] = -solution[:, -1].float()
            offset[targets] = (sum_r / len(self.frames) - (mean * solution).sum(-1)).float()
        model.W.copy_(w.to(device))
        model.leak.copy_(leak.to(device))
        model.offset.copy_(offset.to(device))
        model.input_gain.copy_(gains[model.input_cells.cpu()].to(device))


def solve_weights(model: FlyVisModel, frames: FrameTensors, parts: list[Bucket], ridge: float) -> None:
    """One least-squares solve of W, gains, leaks and offsets on ``frames`` (see :class:`NormalEquations`)."""
    NormalEquations(frames, model.edge_index, parts, ridge).solve(model)


def train_projection(
    model: FlyVisModel, observations: Observations, training: FlyVisTraining, *, progress: bool = True
) -> TrainResult:
    """Adam on random frame batches, then full-batch L-BFGS, each loss at W solved afresh on every training
    frame (the normal equations factorised once), so the result is an ordinary model."""
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

    system = NormalEquations(data, model.edge_index, parts, training.ridge)

    def batch_loss(step: int) -> Tensor:
        system.solve(model)
        batch = data.batch(torch.randperm(len(data), generator=generator)[:batch_frames].to(device))
        return data_loss(model, batch, weights)

    def held_out_loss() -> float:
        system.solve(model)
        return full_loss(model, held_out, weights)

    whole = _frames_loss_and_backward(model, data, weights, training)

    def loss_and_backward() -> Tensor:
        system.solve(model)
        return whole()

    def refine(history: dict[str, list[float]]) -> int:
        rest = [p for g in groups for p in g["params"]]
        done = _lbfgs(rest, training, history, progress, loss_and_backward)
        system.solve(model)
        return done

    objective = Objective(
        batch_loss=batch_loss,
        train_loss=lambda: full_loss(model, data, weights),
        held_out_loss=held_out_loss,
        refine=refine,
        frames_per_step=batch_frames,
        total_steps=training.projection_steps,
        n_validations=training.projection_validations,
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
