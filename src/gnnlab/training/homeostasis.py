r"""Phase 2 of the metabolism model (seed 001, issue 8): the homeostatic term and the type embeddings.

After phase 1 the reactions are learned, but the homeostatic term :math:`-\lambda_t (c_i - c^{base}_t)` is
10-1000x smaller than the fluxes, so in the joint fit MLP_node learned one average curve and the embeddings
a_i stayed one blob. Phase 2 freezes k and g and fits what they leave.

**Default (no search needed).** With k and g frozen the reaction part of every frame is a known number, so
the residual :math:`r_i(t) = \dot c_i(t) - u_i(t) - \sum_j S_{ij} k_j \phi_j(c(t))` is what MLP_node must
explain (strategy 1). A straight line per metabolite fitted to :math:`r_i` against :math:`c_i` recovers
:math:`-\lambda` and :math:`\lambda c^{base}` exactly for the true reaction part; for phase 1's it inherits
phase 1's rate errors (phase 1 fitted k while MLP_node could not tell types apart, so k absorbed part of the
homeostatic misfit). So the lines are fitted jointly with one rate correction per reaction (k itself is not
changed), grouped by mean shift (no labels, no number of groups given; a tiny group is an outlying estimate
and joins the nearest), each metabolite's embedding set to its group's centre plus its capped deviation
(``homeostasis_init: regression``), and MLP_node(c, a_i) regressed on its group's median line (``regulation``
objective) by Adam. No label is read anywhere: this module sees observations and the model, and
``tests/test_homeostasis.py`` checks it.

The other seed-001 strategies are typed keys of the training section (amplification, warm-up/cosine,
time-step curriculum, multi-scale rollouts, gradient accumulation, stop-gradient, offset penalty, gradient
clipping, MLP_node re-initialisation), each a small pure function or branch below.
"""

import dataclasses
import math
import time
from typing import Any

import numpy as np
import torch
from sklearn.cluster import MeanShift, estimate_bandwidth
from torch import Tensor, nn
from tqdm.auto import tqdm

from gnnlab.config import MetabolismTraining
from gnnlab.errors import TrainingDiverged
from gnnlab.models.metabolism import MetabolismGNN
from gnnlab.systems import Frames
from gnnlab.systems.metabolism.simulator import MetabolismObservations
from gnnlab.training import _lbfgs, trajectory

CURVE_POINTS = 16  # concentrations at which strategy 3 compares the metabolites' MLP_node responses
CHUNK = 4096  # frames per no-grad forward pass


@dataclasses.dataclass
class HomeostasisResult:
    """Both phases' outcome: phase 1's summary and history (trained here or read from ``phase1_run``) and
    phase 2's; :meth:`summary` is what the run record reports."""

    status: str
    message: str
    phase1_summary: dict[str, Any]
    history: dict[str, list[float]]
    phase2_loss: float | None  # full-batch mean squared error of the model's dc/dt on the training frames
    phase2_node_magnitude: float | None  # mean |MLP_node(c_i, a_i)| over the training frames
    phase2_steps: int
    phase2_time_s: float
    training_time_s: float  # both phases

    def summary(self) -> dict[str, Any]:
        phase1 = {k: v for k, v in self.phase1_summary.items() if k not in ("status", "message")}
        return {
            "status": self.status,
            "message": self.message,
            **phase1,
            "training_time_s": self.training_time_s,
            "phase2_loss": self.phase2_loss,
            "phase2_node_magnitude": self.phase2_node_magnitude,
            "phase2_steps": self.phase2_steps,
            "phase2_time_s": self.phase2_time_s,
        }


# --- schedules (strategies 2, 4, 5, 6) --------------------------------------------------------------------


def amplification(step: int, total_steps: int, training: MetabolismTraining) -> float:
    """Strategy 2: MLP_node's gain at ``step``, from ``homeostasis_amplification`` down linearly to exactly 1
    after the first ``homeostasis_amplification_decay`` of the steps."""
    peak = training.homeostasis_amplification
    ramp = training.homeostasis_amplification_decay * total_steps
    if peak == 1.0 or step >= ramp:
        return 1.0
    return 1.0 + (peak - 1.0) * (1.0 - step / ramp)


def rollout_length(
    step: int, total_steps: int, training: MetabolismTraining, generator: torch.Generator
) -> int:
    """Euler steps of the rollout at ``step``: drawn from ``homeostasis_rollout_lengths`` when given
    (strategy 6), else ``homeostasis_time_step``, halved in the second half under the curriculum (4)."""
    if training.homeostasis_rollout_lengths:
        lengths = training.homeostasis_rollout_lengths
        return lengths[int(torch.randint(len(lengths), (1,), generator=generator))]
    if training.homeostasis_time_step_curriculum and step >= total_steps / 2:
        return max(1, training.homeostasis_time_step // 2)
    return training.homeostasis_time_step


def learning_rate_factor(step: int, total_steps: int, training: MetabolismTraining) -> float:
    """Strategy 5: linear warm-up over ``homeostasis_lr_warmup_steps``, then constant or cosine to 0."""
    warmup = training.homeostasis_lr_warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if training.homeostasis_lr_schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


# --- initialisation ---------------------------------------------------------------------------------------


def regulation_fit(
    states: np.ndarray,
    residual: np.ndarray,
    mask: np.ndarray,
    *,
    fluxes: np.ndarray | None = None,
    stoichiometry: np.ndarray | None = None,
    ridge: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-metabolite least-squares lines ``residual_i = slope_i c_i + offset_i`` over unmasked frames (F, N).

    With ``fluxes`` (F, R) and ``stoichiometry`` (N, R) the lines are fitted jointly with one relative rate
    correction d_j per reaction, ``+ sum_j S_ij d_j flux_j``, shared by every metabolite the reaction
    touches; ``ridge`` (on standardised columns) settles the d_j the data cannot pin down. For the true
    reaction part the lines are exactly -lambda_t(i) and lambda_t(i) c_base,t(i). Returns (slope, offset)."""
    states, residual, mask = (np.asarray(a, dtype=np.float64) for a in (states, residual, mask))
    n_met = states.shape[1]
    n_rxn = 0 if fluxes is None else fluxes.shape[1]
    size = 2 * n_met + n_rxn
    normal, rhs = np.zeros((size, size)), np.zeros(size)
    for i in range(n_met):
        rows = mask[:, i] > 0
        columns = [states[rows, i], np.ones(rows.sum())]
        index = [i, n_met + i]
        if fluxes is not None and stoichiometry is not None:
            reactions = np.flatnonzero(stoichiometry[i])
            columns += list((fluxes[rows][:, reactions] * stoichiometry[i, reactions]).T)
            index += list(2 * n_met + reactions)
        design = np.stack(columns, axis=1)
        normal[np.ix_(index, index)] += design.T @ design
        rhs[index] += design.T @ residual[rows, i]
    scale = np.sqrt(np.diag(normal)).clip(1e-12)
    standardised = normal / scale[:, None] / scale[None, :] + ridge * np.eye(size)
    solution = np.linalg.solve(standardised, rhs / scale) / scale
    return solution[:n_met], solution[n_met : 2 * n_met]


def _robust_standardise(features: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 MAD) per column: outlying estimates do not set the scale."""
    median = np.median(features, axis=0)
    mad = 1.4826 * np.median(np.abs(features - median), axis=0)
    return (features - median) / np.where(mad > 0, mad, features.std(0).clip(1e-12))


def group_regulation(features: np.ndarray, min_fraction: float) -> np.ndarray:
    """Group metabolites by their standardised regulation estimates (N, 2): mean shift (bandwidth from the
    data, every point assigned), then every group smaller than ``min_fraction`` of the metabolites joins the
    nearest remaining centre, distances in units of that group's per-feature MAD. A type is a set of
    metabolites, so a group of one or two is an outlying estimate, not a type. Returns labels (N,), 0..G-1."""

    bandwidth = estimate_bandwidth(features, quantile=0.3)
    labels = MeanShift(bandwidth=bandwidth if bandwidth > 0 else None).fit(features).labels_
    sizes = np.bincount(labels)
    large = np.flatnonzero(sizes >= max(min_fraction * len(features), 1))
    if large.size == 0:
        large = np.array([sizes.argmax()])
    centres = np.stack([np.median(features[labels == g], axis=0) for g in large])
    spreads = np.stack(
        [np.median(np.abs(features[labels == g] - c), axis=0) for g, c in zip(large, centres, strict=True)]
    )
    spreads = np.where(spreads > 0, spreads, 1.0)
    # nearest in each group's own units: a group's precise feature (the offset) outweighs its noisy one
    nearest = np.argmin((((features[:, None, :] - centres[None]) / spreads[None]) ** 2).sum(-1), axis=1)
    keep = np.isin(labels, large)
    merged = np.where(keep, np.searchsorted(large, labels), nearest)
    return merged


def regulation_embedding(
    slope: np.ndarray, offset: np.ndarray, dim: int, labels: np.ndarray | None = None
) -> np.ndarray:
    """a_i = robustly standardised (slope_i, offset_i), truncated or zero-padded to ``dim``: the fitted
    regulation as coordinates, each on unit scale. With group ``labels`` a_i is its group's median plus its
    own deviation in units of the group's MAD, capped at 2 and scaled to a tenth of the distance between the
    nearest two group centres: every group gets the same density whatever the precision of its estimates,
    and an outlying estimate stays inside its group. Returns (N, dim) float32."""
    features = _robust_standardise(np.stack([slope, offset], axis=1))
    if labels is not None:
        groups = np.unique(labels)
        centres = np.stack([np.median(features[labels == g], axis=0) for g in groups])
        gaps = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
        unit = 0.1 * (gaps[gaps > 0].min() if groups.size > 1 else 1.0)
        for g, centre in zip(groups, centres, strict=True):
            members = labels == g
            mad = 1.4826 * np.median(np.abs(features[members] - centre), axis=0)
            deviation = (features[members] - centre) / np.where(mad > 0, mad, 1.0)
            features[members] = centre + unit * np.clip(deviation, -2.0, 2.0)
    embedding = np.zeros((len(slope), dim), dtype=np.float32)
    width = min(dim, 2)
    embedding[:, :width] = features[:, :width]
    return embedding


def pooled_lines(slope: np.ndarray, offset: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each metabolite's line replaced by its group's median slope and median offset (N,), (N,)."""
    slope, offset = slope.copy(), offset.copy()
    for g in np.unique(labels):
        members = labels == g
        slope[members], offset[members] = np.median(slope[members]), np.median(offset[members])
    return slope, offset


def reinitialise_node(node: nn.Sequential, kind: str, seed: int) -> None:
    """``fresh``: PyTorch's default init of every layer from ``seed``, last layer zero (MLP_node starts as
    the zero function); ``kaiming``: Kaiming-normal hidden weights instead; ``keep``: phase 1's weights."""
    if kind == "keep":
        return
    generator = torch.Generator().manual_seed(seed)
    linears = [m for m in node if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer in linears[:-1]:
            if kind == "kaiming":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(layer.bias)
            else:
                bound = 1.0 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        nn.init.zeros_(linears[-1].weight)
        if linears[-1].bias is not None:
            nn.init.zeros_(linears[-1].bias)


# --- losses -----------------------------------------------------------------------------------------------


def response_curves(model: MetabolismGNN, grid: Tensor) -> Tensor:
    """MLP_node(c, a_i) of every metabolite at the concentrations ``grid`` (S,): (N, S)."""
    return model.node_term(grid.unsqueeze(1).expand(-1, model.n_metabolites)).T


def cluster_loss(model: MetabolismGNN, grid: Tensor) -> Tensor:
    """Strategy 3: weighted mean squared embedding distance over pairs, weights exp(-d²/h²) of the pairs'
    response-curve distance d (detached model outputs, never types), divided by the mean squared embedding
    distance. h² is the median squared distance to the (N/10)-th nearest curve, a local scale: a metabolite
    is pulled towards those that respond like it, not towards everyone. Scale-free: it is lowered by moving
    alike-responding metabolites together relative to the rest, not by shrinking every embedding."""
    with torch.no_grad():
        curves = response_curves(model, grid)
        d2 = torch.cdist(curves, curves) ** 2
        k = max(1, d2.shape[0] // 10)
        scale = torch.kthvalue(d2, k + 1, dim=1).values.median().clamp_min(1e-30)  # k+1: skip itself
        others = ~torch.eye(d2.shape[0], dtype=torch.bool, device=d2.device)
        weights = torch.exp(-d2 / scale) * others
    emb = model.embedding
    e2 = torch.cdist(emb, emb) ** 2
    return (weights * e2).sum() / weights.sum() / e2[others].mean().clamp_min(1e-12)


def offset_penalty(model: MetabolismGNN) -> Tensor:
    """mean_i MLP_node(0, a_i)²: the output at zero concentration."""
    zero = model.embedding.new_zeros(1, model.n_metabolites)
    return model.node_term(zero).pow(2).mean()


@dataclasses.dataclass(frozen=True)
class _Data:
    states: Tensor  # (F, N) training frames
    drive: Tensor  # (F, N) dc/dt - u: what node + reaction terms must produce
    mask: Tensor  # (F, N)
    reaction: Tensor | None  # (F, N) frozen reaction term (None when k and g train)
    readings: Tensor  # (runs, T, N) training trajectories, for rollouts
    inputs: Tensor  # (runs, T, N)
    delta_t: float
    lines: tuple[Tensor, Tensor] | None = None  # per-metabolite regulation (slope, offset), (N,) each


def _regulation_loss(model: MetabolismGNN, data: _Data, index: Tensor) -> Tensor:
    """Mean squared error of MLP_node against each metabolite's estimated regulation line, at the observed
    concentrations of the frames ``index`` (so the fit covers exactly the range the dynamics visit)."""
    assert data.lines is not None
    c = data.states[index]
    slope, offset = data.lines
    return ((model.node_term(c) - (slope * c + offset)) ** 2).mean()


def _frame_loss(model: MetabolismGNN, data: _Data, index: Tensor) -> Tensor:
    """Mean squared error of node + reaction terms against dc/dt - u on the frames ``index`` (strategy 1:
    with k and g frozen the reaction part is a cached constant, so this is a regression on the residual)."""
    c = data.states[index]
    reaction = data.reaction[index] if data.reaction is not None else model.reaction_term(c)
    error = (model.node_term(c) + reaction - data.drive[index]) ** 2 * data.mask[index]
    return error.sum() / data.mask[index].sum().clamp_min(1.0)


def _rollout_loss(
    model: MetabolismGNN, data: _Data, length: int, n_windows: int, generator: torch.Generator, stop: bool
) -> Tensor:
    """Euler rollouts of ``length`` steps from observed states, back-propagated through time: mean squared
    state error over the steps, divided by delta_t² so that one step is the frame loss's scale."""
    n_runs, n_frames, _ = data.readings.shape
    length = min(length, n_frames - 1)
    run = torch.randint(n_runs, (n_windows,), generator=generator)
    start = torch.randint(n_frames - length, (n_windows,), generator=generator)
    c = data.readings[run, start]
    total = c.new_zeros(())
    for s in range(length):
        reaction = model.reaction_term(c.detach() if stop else c)
        c = c + data.delta_t * (model.node_term(c) + reaction + data.inputs[run, start + s])
        total = total + ((c - data.readings[run, start + s + 1]) ** 2).mean()
    return total / (length * data.delta_t**2)


def _full_frame_metrics(model: MetabolismGNN, data: _Data) -> tuple[float, float]:
    """(phase2_loss, phase2_node_magnitude) over every training frame."""
    squared = magnitude = 0.0
    with torch.no_grad():
        for start in range(0, data.states.shape[0], CHUNK):
            part = slice(start, start + CHUNK)
            c, mask = data.states[part], data.mask[part]
            node = model.node_term(c)
            reaction = data.reaction[part] if data.reaction is not None else model.reaction_term(c)
            squared += float((((node + reaction - data.drive[part]) ** 2) * mask).sum())
            magnitude += float((node.abs() * mask).sum())
    count = max(float(data.mask.sum()), 1.0)
    return squared / count, magnitude / count


def phase2_frames(observations: MetabolismObservations, training: MetabolismTraining) -> Frames:
    """The training frames phase 2 regresses on: forward differences on clean readings, Savitzky-Golay
    states and derivatives once noise dominates the differences (``objective`` as phase 1 resolves it)."""
    readings, inputs = observations.trajectories("train")
    objective = training.objective
    if objective == "auto":
        objective = trajectory.choose_objective(readings, observations.delta_t)
    if objective == "derivative":
        return observations.frames("train")
    return trajectory.smoothed_frames(readings, inputs, observations.delta_t, training.smoothing_window)


def _prepare_data(
    model: MetabolismGNN,
    observations: MetabolismObservations,
    frozen: bool,
    device: torch.device,
    training: MetabolismTraining | None = None,
) -> _Data:
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
    frames = observations.frames("train") if training is None else phase2_frames(observations, training)
    states, mask = as_tensor(frames.states), as_tensor(frames.mask)
    drive = as_tensor(frames.targets) - as_tensor(frames.inputs)
    reaction = None
    if frozen:
        with torch.no_grad():
            reaction = torch.cat(
                [model.reaction_term(states[s : s + CHUNK]) for s in range(0, len(states), CHUNK)]
            )
    readings, inputs = observations.trajectories("train")
    return _Data(states, drive, mask, reaction, as_tensor(readings), as_tensor(inputs), observations.delta_t)


# --- the phase ---------------------------------------------------------------------------------------------


def train(
    model: MetabolismGNN,
    observations: MetabolismObservations,
    training: MetabolismTraining,
    *,
    phase1_summary: dict[str, Any],
    phase1_history: dict[str, list[float]],
    progress: bool = True,
) -> HomeostasisResult:
    """Run phase 2 on a phase-1 model in place; a non-finite loss ends it with status ``failed: diverged``.

    With ``freeze_stoichiometry`` k and g have ``requires_grad`` off throughout (restored after), so they
    leave phase 2 bit-identical; otherwise they train at their phase-1 rates."""
    if training.n_threads:
        torch.set_num_threads(training.n_threads)
    device = model.log_k.device
    start_time = time.perf_counter()
    frozen = training.freeze_stoichiometry
    reaction_params = [model.log_k, *model.substrate.parameters()]
    for p in reaction_params:
        p.requires_grad_(not frozen)
    try:
        data = _prepare_data(model, observations, frozen, device, training)
        if training.homeostasis_init == "regression" or training.homeostasis_objective == "regulation":
            data = _estimate_regulation(model, data, observations, training)
        reinitialise_node(model.node, training.homeostasis_node_init, training.seed)
        history, message = _optimise(model, data, training, progress)
        if not message and training.homeostasis_objective != "rollout":
            message = _refine(model, data, training, history, progress)
    finally:
        for p in reaction_params:
            p.requires_grad_(True)
        model.node_gain = 1.0
    phase2_time = time.perf_counter() - start_time
    total_time = float(phase1_summary.get("training_time_s", 0.0)) + phase2_time
    merged = {**phase1_history, **history}
    if message:
        return HomeostasisResult(
            "failed: diverged", message, phase1_summary, merged, None, None, len(history["phase2_loss"]),
            phase2_time, total_time,
        )  # fmt: skip
    loss, magnitude = _full_frame_metrics(model, data)
    return HomeostasisResult(
        "ok",
        "",
        phase1_summary,
        merged,
        loss,
        magnitude,
        len(history["phase2_loss"]),
        phase2_time,
        total_time,
    )


def _estimate_regulation(
    model: MetabolismGNN, data: _Data, observations: MetabolismObservations, training: MetabolismTraining
) -> _Data:
    """Fit each metabolite's regulation line to the residual of the (current) reaction part, group the
    lines (``homeostasis_grouping``), set the embeddings from them (``homeostasis_init: regression``) and
    return the data with the lines the ``regulation`` objective regresses on."""
    reaction = data.reaction if data.reaction is not None else _no_grad_reaction(model, data.states)
    fluxes = None
    if training.homeostasis_reaction_correction:
        with torch.no_grad():
            fluxes = torch.cat(
                [
                    model.unit_rates(data.states[s : s + CHUNK]) * torch.pow(10.0, model.log_k)
                    for s in range(0, len(data.states), CHUNK)
                ]
            )
        fluxes = fluxes.cpu().numpy()
    slope, offset = regulation_fit(
        data.states.cpu().numpy(),
        (data.drive - reaction).cpu().numpy(),
        data.mask.cpu().numpy(),
        fluxes=fluxes,
        stoichiometry=observations.stoichiometry if fluxes is not None else None,
        ridge=training.homeostasis_ridge,
    )
    labels = None
    if training.homeostasis_grouping == "mean_shift":
        labels = group_regulation(
            _robust_standardise(np.stack([slope, offset], axis=1)), training.homeostasis_min_group_fraction
        )
    if training.homeostasis_init == "regression":
        embedding = regulation_embedding(slope, offset, model.embedding.shape[1], labels)
        with torch.no_grad():
            model.embedding.copy_(torch.as_tensor(embedding, device=model.embedding.device))
    if labels is not None:
        slope, offset = pooled_lines(slope, offset, labels)
    device = data.states.device
    lines = (torch.as_tensor(slope, dtype=torch.float32, device=device),
             torch.as_tensor(offset, dtype=torch.float32, device=device))  # fmt: skip
    return dataclasses.replace(data, lines=lines)


def _refine(
    model: MetabolismGNN, data: _Data, training: MetabolismTraining, history: dict, progress: bool
) -> str:
    """Full-batch L-BFGS on MLP_node's weights for the frame objective (plus the offset penalty; the
    response-curve loss acts on the embeddings, which stay put here); returns a divergence message or ""."""
    regulation = training.homeostasis_objective == "regulation"
    every = torch.arange(len(data.states), device=data.states.device)
    phase2_history: dict[str, list[float]] = {"lbfgs_loss": []}  # _lbfgs appends to "lbfgs_loss"

    def loss_and_backward() -> Tensor:
        loss = (_regulation_loss if regulation else _frame_loss)(model, data, every)
        if training.coeff_homeostasis_offset > 0:
            loss = loss + training.coeff_homeostasis_offset * offset_penalty(model)
        loss.backward()
        return loss.detach()

    try:
        _lbfgs(
            list(model.node.parameters()),
            training.model_copy(update={"lbfgs_iterations": training.homeostasis_lbfgs_iterations}),
            phase2_history,
            progress,
            loss_and_backward,
        )
    except TrainingDiverged as exc:
        return str(exc)
    finally:
        history["phase2_lbfgs_loss"] = phase2_history["lbfgs_loss"]
    return ""


def _no_grad_reaction(model: MetabolismGNN, states: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.cat([model.reaction_term(states[s : s + CHUNK]) for s in range(0, len(states), CHUNK)])


def _optimise(
    model: MetabolismGNN, data: _Data, training: MetabolismTraining, progress: bool
) -> tuple[dict[str, list[float]], str]:
    """The phase-2 Adam loop; returns (history, message), the message non-empty when the loss diverged."""
    groups: list[dict[str, Any]] = [
        {
            "name": "node",
            "params": list(model.node.parameters()),
            "lr": training.learning_rate_node_homeostasis,
        },
        {
            "name": "embedding",
            "params": [model.embedding],
            "lr": training.learning_rate_embedding_homeostasis,
        },
    ]
    if not training.freeze_stoichiometry:
        groups += [
            {"name": "k", "params": [model.log_k], "lr": training.learning_rate_k},
            {"name": "sub", "params": list(model.substrate.parameters()), "lr": training.learning_rate_sub},
        ]
    accumulate = training.homeostasis_gradient_accumulation
    batches = math.ceil(
        len(data.states) * training.homeostasis_data_augmentation_loop / training.homeostasis_batch_size
    )
    total_steps = max(1, batches // accumulate)
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, total_steps, training)
    )
    generator = torch.Generator().manual_seed(training.seed)
    states = data.states
    low, high = torch.quantile(
        states.flatten()[:: max(1, states.numel() // 100000)], states.new_tensor([0.01, 0.99])
    )
    grid = torch.linspace(float(low), float(high), CURVE_POINTS, device=states.device)
    params = [p for g in groups for p in g["params"]]
    history: dict[str, list[float]] = {"phase2_loss": []}
    bar = tqdm(
        total=total_steps, desc="phase 2 (homeostasis)", unit="step", disable=not progress, dynamic_ncols=True
    )
    with bar:
        for step in range(total_steps):
            model.node_gain = amplification(step, total_steps, training)
            optimizer.zero_grad(set_to_none=True)
            value = 0.0
            for _ in range(accumulate):
                if training.homeostasis_objective != "rollout":
                    index = torch.randint(
                        len(states), (training.homeostasis_batch_size,), generator=generator
                    ).to(states.device)
                    frame_loss = (
                        _regulation_loss if training.homeostasis_objective == "regulation" else _frame_loss
                    )
                    loss = frame_loss(model, data, index)
                else:
                    length = rollout_length(step, total_steps, training, generator)
                    loss = _rollout_loss(
                        model, data, length, training.homeostasis_batch_size, generator,
                        training.homeostasis_stop_gradient,
                    )  # fmt: skip
                if training.coeff_embedding_cluster > 0:
                    loss = loss + training.coeff_embedding_cluster * cluster_loss(model, grid)
                if training.coeff_homeostasis_offset > 0:
                    loss = loss + training.coeff_homeostasis_offset * offset_penalty(model)
                (loss / accumulate).backward()
                value += loss.item() / accumulate
            if not math.isfinite(value):
                return history, f"phase-2 loss is {value} at step {step}"
            if training.homeostasis_grad_clip_norm:
                torch.nn.utils.clip_grad_norm_(params, training.homeostasis_grad_clip_norm)
            optimizer.step()
            scheduler.step()
            history["phase2_loss"].append(value)
            bar.set_postfix(loss=f"{value:.3g}")
            bar.update()
    return history, ""


__all__ = [
    "HomeostasisResult",
    "amplification",
    "cluster_loss",
    "group_regulation",
    "learning_rate_factor",
    "offset_penalty",
    "phase2_frames",
    "pooled_lines",
    "regulation_embedding",
    "regulation_fit",
    "reinitialise_node",
    "response_curves",
    "rollout_length",
    "train",
]
