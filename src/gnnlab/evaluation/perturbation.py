"""Scoring a perturbation-effect predictor on held-out knock-downs, against the true effects, beside the
mean-effect and zero-effect baselines on the same split; and the plots that show it.

Every metric leaves out the knocked gene itself: its own drop is set by the experiment (and is the largest
change by far, so it would dominate every score), while the question is how the knock-down propagates.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from gnnlab.evaluation.figures import save_figures  # noqa: E402
from gnnlab.models.perturbation import PerturbationEnsemble, PerturbationGNN, PerturbationMLP  # noqa: E402
from gnnlab.systems.perturbation.simulator import (  # noqa: E402
    PerturbationGroundTruth,
    PerturbationObservations,
)

TOP_GENES = 20  # differentially expressed genes scored per perturbation (largest true |change|)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (a constant prediction carries no ranking)."""
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def effect_metrics(predicted: np.ndarray, true: np.ndarray, knocked: np.ndarray) -> dict[str, float]:
    """MSE and Pearson of predicted changes (P, G) over all off-target genes and over each perturbation's
    top-20 off-target genes by true |change|, and sign accuracy on those of the top-20 that change at all;
    means over perturbations."""
    rows = {"mse": [], "pearson": [], "top20_mse": [], "top20_pearson": [], "sign_accuracy": []}
    for p, k in enumerate(knocked):
        keep = np.arange(true.shape[1]) != k
        pred, real = predicted[p, keep], true[p, keep]
        top = np.argsort(-np.abs(real), kind="stable")[:TOP_GENES]
        rows["mse"].append(float(np.mean((pred - real) ** 2)))
        rows["pearson"].append(_pearson(pred, real))
        rows["top20_mse"].append(float(np.mean((pred[top] - real[top]) ** 2)))
        rows["top20_pearson"].append(_pearson(pred[top], real[top]))
        changed = top[real[top] != 0]  # a gene the knock-down does not reach has no sign to get right
        if changed.size:
            rows["sign_accuracy"].append(float(np.mean(np.sign(pred[changed]) == np.sign(real[changed]))))
    return {key: float(np.mean(values)) if values else float("nan") for key, values in rows.items()}


def mean_effect(observations: PerturbationObservations) -> np.ndarray:
    """The mean-effect baseline (G,): each gene's mean measured change over the training knock-downs of
    other genes."""
    labels, effects = observations.effects()
    off_target = effects.astype(np.float64)
    off_target[np.arange(len(labels)), observations.gene_index(labels)] = np.nan
    return np.nan_to_num(np.nanmean(off_target, axis=0))


def predictions(
    model: PerturbationGNN | PerturbationMLP | PerturbationEnsemble, observations: PerturbationObservations
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out knocked gene indices (H,) and the model's predicted changes (H, G)."""
    knocked = observations.gene_index(observations.heldout_perturbations)
    model.eval()
    with torch.no_grad():
        predicted = model.predict(torch.as_tensor(knocked)).cpu().numpy()
    return knocked, predicted


def edge_auroc(embedding_distance: np.ndarray, truth: PerturbationGroundTruth) -> float:
    """How well closeness of learned points ranks true (undirected) regulatory edges among all gene pairs."""
    g = embedding_distance.shape[0]
    adjacency = np.zeros((g, g), dtype=bool)
    adjacency[truth.edge_index[0], truth.edge_index[1]] = True
    adjacency |= adjacency.T
    upper = np.triu_indices(g, k=1)
    return float(roc_auc_score(adjacency[upper], -embedding_distance[upper]))


def embedded(
    model: PerturbationGNN | PerturbationMLP | PerturbationEnsemble,
) -> PerturbationGNN | PerturbationMLP:
    """The one model whose embedding the insight metrics (edge_auroc, embedding_depth_spearman, curvature)
    and embedding.png read: ``model`` itself, or an ensemble's member 0. The decoder reads only distances,
    which a rotation about the origin keeps, so members' points are not aligned and have no mean to read."""
    return model.members[0] if isinstance(model, PerturbationEnsemble) else model


def _geometry(model: PerturbationGNN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Learned points (G, d), pairwise manifold distances (G, G) and distances from the origin (G,)."""
    with torch.no_grad():
        z = model.embed()
        distance = model.manifold.dist(z[:, None, :], z[None, :, :])
        return z.cpu().numpy(), distance.cpu().numpy(), model.manifold.dist0(z).cpu().numpy()


def evaluate(
    model: PerturbationGNN | PerturbationMLP | PerturbationEnsemble,
    observations: PerturbationObservations,
    truth: PerturbationGroundTruth,
) -> dict[str, float]:
    """Held-out effect metrics of the model (an ensemble's mean prediction) and of the baselines, and what
    the embedding learned (an ensemble's member 0, see :func:`embedded`)."""
    knocked, predicted = predictions(model, observations)
    true = truth.effects_of(observations.heldout_perturbations)
    metrics = effect_metrics(predicted, true, knocked)
    baseline = np.broadcast_to(mean_effect(observations), true.shape)
    metrics.update({f"baseline_{k}": v for k, v in effect_metrics(baseline, true, knocked).items()})
    metrics.update({f"zero_{k}": v for k, v in effect_metrics(np.zeros_like(true), true, knocked).items()})
    geometric = embedded(model)
    if isinstance(geometric, PerturbationGNN):
        _, distance, radius = _geometry(geometric)
        if truth.edge_index.shape[1] > 0:
            metrics["edge_auroc"] = edge_auroc(distance, truth)
            metrics["embedding_depth_spearman"] = float(spearmanr(radius, truth.depth).statistic)
        metrics["curvature"] = geometric.curvature
    return metrics


def plot(
    model: PerturbationGNN | PerturbationMLP | PerturbationEnsemble,
    observations: PerturbationObservations,
    truth: PerturbationGroundTruth,
    history: dict[str, list[float]],
    directory: Path,
) -> list[Path]:
    """effects.png (predicted vs true held-out changes), loss.png (training loss) and, for the GNN,
    embedding.png (learned points coloured by true depth; an ensemble's member 0)."""
    figures = {"effects.png": _plot_effects(model, observations, truth), "loss.png": _plot_loss(history)}
    geometric = embedded(model)
    if isinstance(geometric, PerturbationGNN):
        figures["embedding.png"] = _plot_embedding(geometric, truth)
    return save_figures(figures, directory)


def _plot_effects(model, observations, truth):
    knocked, predicted = predictions(model, observations)
    true = truth.effects_of(observations.heldout_perturbations)
    off_target = np.ones_like(true, dtype=bool)
    off_target[np.arange(len(knocked)), knocked] = False
    top = np.zeros_like(off_target)
    for p in range(len(knocked)):
        order = np.argsort(-np.abs(np.where(off_target[p], true[p], 0.0)), kind="stable")[:TOP_GENES]
        top[p, order] = True
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    rest = off_target & ~top
    ax.scatter(true[rest], predicted[rest], s=3, alpha=0.3, color="0.6", label="other genes")
    ax.scatter(true[top], predicted[top], s=6, alpha=0.7, color="C3", label=f"top-{TOP_GENES} DE genes")
    low, high = float(true[off_target].min()), float(true[off_target].max())
    ax.plot([low, high], [low, high], "k--", lw=0.8)
    ax.set_xlabel("true log-fold change (held-out knock-downs)")
    ax.set_ylabel("predicted log-fold change")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def _plot_embedding(model, truth):
    z, _, _ = _geometry(model)
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    y = z[:, 1] if z.shape[1] > 1 else np.zeros(len(z))
    points = ax.scatter(z[:, 0], y, c=truth.depth, cmap="viridis", s=10)
    fig.colorbar(points, ax=ax, label="true depth in the network")
    if model.curvature > 0:
        radius = 1.0 / np.sqrt(model.curvature)
        ax.add_patch(plt.Circle((0, 0), radius, fill=False, color="k", lw=0.8))
        ax.set_xlim(-1.05 * radius, 1.05 * radius)
        ax.set_ylim(-1.05 * radius, 1.05 * radius)
    ax.set_aspect("equal")
    ax.set_title("learned gene points (first two coordinates)", fontsize=9)
    return fig


def _plot_loss(history):
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    loss = np.asarray(history.get("loss", []))
    if loss.size:
        ax.semilogy(loss, color="tab:blue", alpha=0.4, lw=0.6, label="mini-batch")
    epoch_loss = history.get("epoch_loss", [])
    if epoch_loss and loss.size:
        steps = np.linspace(0, loss.size, len(epoch_loss) + 1)[1:] - 1
        ax.semilogy(steps, epoch_loss, color="tab:orange", label="all training knock-downs (epoch end)")
    ax.set(xlabel="optimiser step", ylabel="mean squared error", title="training loss")
    ax.legend(fontsize=8)
    return fig
