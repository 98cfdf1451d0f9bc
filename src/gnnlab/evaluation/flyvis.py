"""Scoring a trained flyvis model against the hidden truth, and the plots that show it.

The gauge (:mod:`gnnlab.models.flyvis`): the model learns the frame map, so neuron i's leak rate
s_i = (1 - exp(-Δt/τ_i)) / Δt multiplies its f_theta, its incoming W and its input gain. s_i and c_i are
read off f_theta by least squares on f ≈ c_i - s_i v over the neuron's observed 1st-99th percentile range;
then τ_i = -Δt / ln(1 - s_i Δt), V_rest,i = c_i / s_i and W_ij = learned W_ij / s_i. These come from the
model alone (nothing is fitted to the truth), so a wrong sign or scale is penalised. connectivity_R2 is R²
on the identity line over the true edges; connectivity_pearson_R2 is the squared Pearson correlation (the
prior system's kind of score, blind to scale). τ and V_rest are per cell type: each type's estimate is the
median over its cells, scored on the 65 type values (per-neuron scores reported too).

connectivity_R2_without_autapse_targets scores only edges into cells without a self-synapse (a property
of the known connectome, not of the answer). A cell whose voltage stays above 0 has ReLU(v_i) = v_i, so
its autapse weight and its leak are one coefficient; the leak is the gauge s_i of all its inputs, so every
edge into it is mis-scaled. On noise-free data (extent 1, least squares in the true functional form) the
full score was -0.92 and this one 0.75, tau_R2 0.97 over the 47 types without autapses.

cluster_accuracy: k-means with k = the number of types on the per-neuron (log τ, V_rest) estimates, each
standardised, Hungarian-matched to the true types.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402

from gnnlab.evaluation.figures import save_figures  # noqa: E402
from gnnlab.evaluation.metrics import matched_accuracy, mean_pearson, pearson_r2, r2_identity  # noqa: E402
from gnnlab.evaluation.rollout import rollout  # noqa: E402
from gnnlab.models.flyvis import FlyVisModel  # noqa: E402
from gnnlab.systems.flyvis.simulator import FlyVisGroundTruth, FlyVisObservations  # noqa: E402

TEST_WINDOW = 50  # rollout frames between resets to the observed state (1 s at Δt = 0.02)
MIN_LEAK = 1e-3  # s_i below this (per second) reads as no leak: τ is capped instead of infinite


def leak_and_offset(model: FlyVisModel, observations: FlyVisObservations) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron (s_i, c_i) of f_theta ≈ c_i - s_i v, by least squares over the observed range."""
    n = observations.n_cells
    low, high = np.percentile(observations.activity.reshape(-1, n), [1, 99], axis=0)
    sweep = np.linspace(low, high, 20)  # (S, N)
    with torch.no_grad():
        f = model.f_theta(torch.as_tensor(sweep, dtype=torch.float32, device=model.W.device)).cpu().numpy()
    centred = sweep - sweep.mean(0)
    spread = (centred**2).sum(0)
    slope = np.divide((centred * (f - f.mean(0))).sum(0), spread, out=np.zeros(n), where=spread > 0)
    offset = f.mean(0) - slope * sweep.mean(0)
    return -slope, offset


def recovered_parameters(model: FlyVisModel, observations: FlyVisObservations) -> dict[str, np.ndarray]:
    """Per-neuron τ and V_rest and per-edge W in the truth's units, by the gauge of the module docstring."""
    dt = observations.delta_t
    leak, offset = leak_and_offset(model, observations)
    rate = np.clip(leak, MIN_LEAK, (1 - 1e-6) / dt)
    _, target = observations.edge_index
    return {
        "tau": -dt / np.log1p(-rate * dt),
        "V_rest": offset / rate,
        "W": model.W.detach().cpu().numpy() / rate[target],
    }


def _per_type(values: np.ndarray, types: np.ndarray, n_types: int) -> np.ndarray:
    return np.array([np.median(values[types == t]) for t in range(n_types)])


def windowed_rollout(model: FlyVisModel, observations: FlyVisObservations) -> np.ndarray:
    """Free rollout on the held-out stimulus, reset to the observed state every ``TEST_WINDOW`` frames."""
    activity, inputs = observations.test_activity, observations.full_inputs(observations.test_inputs)
    pieces = [
        rollout(model, activity[s], inputs[s : s + TEST_WINDOW], observations.delta_t, nonnegative=False)
        for s in range(0, len(activity), TEST_WINDOW)
    ]
    return np.concatenate(pieces)


def evaluate(
    model: FlyVisModel, observations: FlyVisObservations, truth: FlyVisGroundTruth
) -> dict[str, float]:
    """Connectivity, per-type τ and V_rest, types, and the windowed rollout on the held-out stimulus."""
    found = recovered_parameters(model, observations)
    n_types = len(truth.tau)
    metrics = {
        "connectivity_R2": r2_identity(found["W"], truth.W),
        "connectivity_pearson_R2": pearson_r2(found["W"], truth.W),
        "connectivity_sign_accuracy": float(np.mean(np.sign(found["W"]) == np.sign(truth.W))),
    }
    per_edge_type = [
        r2_identity(found["W"][truth.edge_type == k], truth.W[truth.edge_type == k])
        for k in np.unique(truth.edge_type)
    ]
    metrics["connectivity_R2_edge_type_median"] = float(np.nanmedian(per_edge_type))
    plain = ~observations.autapse_cells[observations.edge_index[1]]
    metrics["connectivity_R2_without_autapse_targets"] = r2_identity(found["W"][plain], truth.W[plain])
    for name, true in (("tau", truth.tau), ("V_rest", truth.V_rest)):
        metrics[f"{name}_R2"] = r2_identity(_per_type(found[name], truth.cell_types, n_types), true)
        metrics[f"{name}_R2_per_neuron"] = r2_identity(found[name], true[truth.cell_types])
    features = np.stack([np.log(found["tau"]), found["V_rest"]], axis=1)
    features = (features - features.mean(0)) / features.std(0).clip(1e-12)
    labels = KMeans(n_clusters=n_types, n_init=10, random_state=0).fit_predict(features)
    metrics["cluster_accuracy"] = matched_accuracy(labels, truth.cell_types)
    predicted = windowed_rollout(model, observations)
    metrics["test_R2"] = r2_identity(predicted, truth.clean_test_activity)
    metrics["test_pearson"] = mean_pearson(predicted, truth.clean_test_activity)
    return metrics


def plot(
    model: FlyVisModel,
    observations: FlyVisObservations,
    truth: FlyVisGroundTruth,
    history: dict[str, list[float]],
    directory: Path,
) -> list[Path]:
    """W scatter by edge type, τ and V_rest per type, embeddings by type, traces, loss curves."""
    found = recovered_parameters(model, observations)
    n_types = len(truth.tau)
    figures = {}
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(truth.W, found["W"], c=truth.edge_type % 20, cmap="tab20", s=2, alpha=0.5)
    lim = float(np.abs(truth.W).max()) * 1.1
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
    ax.set(
        xlim=(-lim, lim), ylim=(-lim, lim), xlabel="true W", ylabel="learned W / s_i", title="W by edge type"
    )
    figures["W_scatter.png"] = fig

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    for ax, name in zip(axes, ("tau", "V_rest"), strict=True):
        true = getattr(truth, name)
        ax.scatter(true, _per_type(found[name], truth.cell_types, n_types), s=10)
        lo, hi = float(true.min()), float(true.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(xlabel=f"true {name}", ylabel=f"learned {name} (type median)", title=f"{name} per type")
    figures["tau_V_rest.png"] = fig

    embedding = model.embedding.detach().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(embedding[:, 0], embedding[:, -1], c=truth.cell_types, cmap="nipy_spectral", s=4)
    ax.set(xlabel="a_0", ylabel=f"a_{embedding.shape[1] - 1}", title="embeddings by true type")
    figures["embeddings.png"] = fig

    predicted = windowed_rollout(model, observations)
    shown = [
        int(np.flatnonzero(truth.cell_types == t)[0]) for t in np.linspace(0, n_types - 1, 4).astype(int)
    ]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 1.8 * len(shown)), sharex=True)
    for ax, cell in zip(axes, shown, strict=True):
        ax.plot(observations.test_activity[:, cell], lw=0.8, label="observed")
        ax.plot(predicted[:, cell], lw=0.8, label="rollout")
        ax.set(ylabel=f"cell {cell}\ntype {truth.cell_types[cell]}")
    axes[0].legend(fontsize=7)
    axes[-1].set_xlabel("frame (held-out stimulus)")
    figures["traces.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(history.get("loss", []), lw=0.5, label="train (Adam batches)")
    if history.get("val_loss"):
        ax.semilogy(history["val_step"], history["val_loss"], "o-", ms=3, label="held-out")
    ax.set(xlabel="Adam step", ylabel="loss", title="loss curves")
    ax.legend()
    figures["loss.png"] = fig
    return save_figures(figures, directory)
