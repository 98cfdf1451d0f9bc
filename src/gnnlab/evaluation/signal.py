"""Scoring a trained signal model against the hidden truth, and the plots that show it.

Every score compares learned edge weights with the true W on the identity line. The only rescaling is one
global positive ``scale`` supplied by the caller from the model's documented gauge, never fitted to the
answer, so a sign-flipped W or a wrong overall scale is penalised. Scores are computed on the true edges,
not on the dense N x N matrix, whose many exact zeros would otherwise make absent entries look recovered.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from gnnlab.evaluation.figures import save_figures  # noqa: E402
from gnnlab.evaluation.metrics import matched_accuracy, mean_pearson, pearson_r2, r2_identity  # noqa: E402
from gnnlab.evaluation.rollout import rollout  # noqa: E402
from gnnlab.models.signal import SignalModel  # noqa: E402
from gnnlab.systems.signal.simulator import SignalGroundTruth, SignalObservations  # noqa: E402

# Chaotic activity: a perfect model restarted from float32-rounded states still decorrelates eventually,
# so test_R2_short scores the first tenth of the rollout too.
SHORT_HORIZON_DIVISOR = 10
VARIANCE_KEPT = 0.99  # effective_rank: principal components needed for this share of the variance
# cluster_accuracy: f_theta profiles on a grid over the central 90 % of the observed activity, where every
# neuron's f_theta is constrained by data (the sparse tails are extrapolation)
PROFILE_PERCENTILES = (5.0, 95.0)
PROFILE_POINTS = 50


def connectivity_metrics(
    learned: np.ndarray, edge_index: np.ndarray, true_w: np.ndarray, scale: float = 1.0
) -> dict[str, float]:
    """Scores of ``learned`` (one weight per candidate edge, ``edge_index`` rows source j, target i)
    against ``true_w[i, j]``. With candidates beyond the true support (unknown support) also the mean
    magnitude off the support and the AUROC of |weight| for telling true edges from absent ones."""
    if not scale > 0:
        raise ValueError(f"scale must be a positive number, got {scale}")
    source, target = edge_index
    estimate = np.asarray(learned, dtype=float) / scale
    truth = true_w[target, source]
    on_support = truth != 0
    metrics = {
        "connectivity_R2": r2_identity(estimate[on_support], truth[on_support]),
        "connectivity_pearson_R2": pearson_r2(estimate[on_support], truth[on_support]),
        "connectivity_sign_accuracy": float(
            np.mean(np.sign(estimate[on_support]) == np.sign(truth[on_support]))
        ),
    }
    if not on_support.all():
        metrics["connectivity_R2_all_pairs"] = r2_identity(estimate, truth)
        metrics["connectivity_R2_off_support"] = float(np.mean(np.abs(estimate[~on_support])))
        metrics["edge_auroc"] = float(roc_auc_score(on_support, np.abs(estimate)))
    return metrics


def effective_rank(activity: np.ndarray, kept: float = VARIANCE_KEPT) -> int:
    """Principal components of ``activity`` (T, N) needed to explain ``kept`` of its variance: how many
    independent directions the data explore, which bounds how much of W they can determine."""
    centred = activity - activity.mean(0)
    variance = np.linalg.svd(centred, compute_uv=False) ** 2
    return int(np.searchsorted(np.cumsum(variance) / variance.sum(), kept) + 1)


def intrinsic_parameters(model: SignalModel, observations: SignalObservations) -> np.ndarray:
    """Per-neuron (a, b, s) of f_theta read off by least squares on -a u + b + s tanh(u) over the neuron's
    observed 1st-99th percentile range; returns (N, 3). The truth has this form, so a learned f_theta that
    matches it gives back its decay and self-recurrence."""
    n = observations.activity.shape[2]
    low, high = np.percentile(observations.activity.reshape(-1, n), [1, 99], axis=0)
    sweep = np.linspace(low, high, 50)  # (S, N)
    with torch.no_grad():
        f = model.f_theta(torch.as_tensor(sweep, dtype=torch.float32, device=model.W.device)).cpu().numpy()
    params = np.empty((n, 3))
    for i in range(n):
        basis = np.stack([-sweep[:, i], np.ones(len(sweep)), np.tanh(sweep[:, i])], axis=1)
        params[i] = np.linalg.lstsq(basis, f[:, i], rcond=None)[0]
    return params


def function_profiles(
    model: SignalModel,
    observations: SignalObservations,
    percentiles: tuple[float, float] = PROFILE_PERCENTILES,
) -> np.ndarray:
    """(N, PROFILE_POINTS): each neuron's learned f_theta(u, a_i) on one shared grid of u spanning the given
    percentiles of all training activity. Model outputs on observed values only, no ground truth."""
    n = observations.activity.shape[2]
    n_train = observations.activity.shape[0] - observations.n_validation_runs
    low, high = np.percentile(observations.activity[:n_train], percentiles)
    grid = np.repeat(np.linspace(low, high, PROFILE_POINTS)[:, None], n, axis=1)
    with torch.no_grad():
        profiles = model.f_theta(torch.as_tensor(grid, dtype=torch.float32, device=model.W.device))
    return profiles.cpu().numpy().T


def cluster_types(features: np.ndarray, n_types: int) -> np.ndarray:
    """KMeans labels of per-neuron ``features`` (N, D) into ``n_types`` clusters (fixed seed, 10 restarts)."""
    return KMeans(n_clusters=n_types, n_init=10, random_state=0).fit_predict(features)


def held_out_rollout(model: SignalModel, observations: SignalObservations) -> tuple[np.ndarray, int]:
    """Free rollout of the last (held-out) run from its first observed frame; returns (T, N) and the run."""
    run = observations.activity.shape[0] - 1
    initial = observations.activity[run, 0]
    return rollout(model, initial, observations.inputs[run], observations.delta_t, nonnegative=False), run


def evaluate(
    model: SignalModel, observations: SignalObservations, truth: SignalGroundTruth
) -> dict[str, float]:
    """Connectivity (divided by the gain, the model's gauge), per-type dynamics, types, and a free rollout
    on the held-out run against its noise-free activity."""
    metrics = connectivity_metrics(
        model.W.detach().cpu().numpy(), observations.edge_index, truth.W, scale=float(truth.gain)
    )
    params = intrinsic_parameters(model, observations)
    metrics["decay_R2"] = r2_identity(params[:, 0], truth.decay[truth.types])  # nan when every type shares it
    metrics["self_recurrence_R2"] = r2_identity(params[:, 2], truth.self_recurrence[truth.types])
    # types = KMeans clusters of the learned functions (f_theta profiles), as many as the configured
    # n_neuron_types (the experimenter's count, not read from the labels); Hungarian-matched to the truth
    n_types = len(truth.decay)
    labels = cluster_types(function_profiles(model, observations), n_types)
    metrics["cluster_accuracy"] = matched_accuracy(labels, truth.types)
    embedding_labels = cluster_types(model.embedding.detach().cpu().numpy(), n_types)
    metrics["cluster_accuracy_embedding"] = matched_accuracy(embedding_labels, truth.types)
    n_train = truth.clean_activity.shape[0] - observations.n_validation_runs
    metrics["effective_rank"] = effective_rank(truth.clean_activity[:n_train].reshape(-1, len(truth.types)))
    predicted, run = held_out_rollout(model, observations)
    clean = truth.clean_activity[run]
    short = max(2, len(clean) // SHORT_HORIZON_DIVISOR)
    metrics["test_R2"] = r2_identity(predicted, clean)
    metrics["test_pearson"] = mean_pearson(predicted, clean)
    metrics["test_R2_short"] = r2_identity(predicted[:short], clean[:short])
    return metrics


def plot(
    model: SignalModel,
    observations: SignalObservations,
    truth: SignalGroundTruth,
    history: dict[str, list[float]],
    directory: Path,
) -> list[Path]:
    """W scatter, learned functions per type vs truth, embeddings by type, kinographs and loss curves."""
    figures = {}
    source, target = observations.edge_index
    learned = model.W.detach().cpu().numpy() / float(truth.gain)
    true_w = truth.W[target, source]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true_w, learned, s=3, alpha=0.5)
    lim = float(np.abs(np.concatenate([true_w, learned])).max())
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
    ax.set(xlabel="true W", ylabel="learned W / g", title="connectivity")
    figures["W_scatter.png"] = fig

    n = observations.activity.shape[2]
    low, high = np.percentile(observations.activity.reshape(-1, n), [1, 99])
    u = np.linspace(low, high, 100)
    sweep = torch.as_tensor(np.repeat(u[:, None], n, axis=1), dtype=torch.float32, device=model.W.device)
    with torch.no_grad():
        f = model.f_theta(sweep).cpu().numpy()
        g = model.g_phi(sweep).cpu().numpy()
    fig, (ax_f, ax_g) = plt.subplots(1, 2, figsize=(9, 4))
    for t in range(len(truth.decay)):
        colour = plt.cm.tab10(t % 10)
        members = truth.types == t
        ax_f.plot(u, f[:, members], color=colour, alpha=0.2, lw=0.7)
        ax_g.plot(u, g[:, members], color=colour, alpha=0.2, lw=0.7)
        true_f = -truth.decay[t] * u + truth.baseline[t] + truth.self_recurrence[t] * np.tanh(u)
        ax_f.plot(u, true_f, "k--", lw=1.2)
        ax_g.plot(u, np.tanh((u - truth.threshold[t]) / truth.width[t]), "k--", lw=1.2)
    ax_f.set(xlabel="u", ylabel="f_theta(u, a_i)", title="intrinsic dynamics (dashed: truth)")
    ax_g.set(xlabel="u", ylabel="g_phi(u, a_j)", title="transfer function (dashed: truth)")
    figures["functions.png"] = fig

    embedding = model.embedding.detach().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(embedding[:, 0], embedding[:, -1], c=truth.types, cmap="tab10", s=8, vmin=0, vmax=9)
    ax.set(xlabel="a_0", ylabel=f"a_{embedding.shape[1] - 1}", title="embeddings by true type")
    figures["embeddings.png"] = fig

    predicted, run = held_out_rollout(model, observations)
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for ax, activity, title in (
        (axes[0], observations.activity[run], "observed"),
        (axes[1], predicted, "rollout"),
    ):
        ax.imshow(activity.T, aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3, interpolation="nearest")
        ax.set(ylabel="neuron", title=f"held-out run, {title}")
    axes[1].set_xlabel("frame")
    figures["kinograph.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(history.get("loss", []), lw=0.5, label="train (Adam batches)")
    if history.get("val_loss"):
        ax.semilogy(history["val_step"], history["val_loss"], "o-", ms=3, label="held-out")
    ax.set(xlabel="Adam step", ylabel="loss", title="loss curves")
    ax.legend()
    figures["loss.png"] = fig
    return save_figures(figures, directory)
