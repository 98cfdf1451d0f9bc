"""Metric definitions shared by every system. Each is a plain function of arrays, tested on known inputs."""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import DBSCAN
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors


def r2_identity(predicted: np.ndarray, true: np.ndarray) -> float:
    """R² against the identity line: 1 - SS(pred - true) / SS(true - mean). No fitted slope or intercept,
    so a prediction off by a constant factor or offset is penalised (it can go below 0). Sums run in float64:
    a diverged float32 rollout (values near 1e20) would overflow its own squares."""
    predicted, true = np.ravel(predicted).astype(np.float64), np.ravel(true).astype(np.float64)
    total = float(((true - true.mean()) ** 2).sum())
    if total == 0.0:
        return float("nan")
    return 1.0 - float(((predicted - true) ** 2).sum()) / total


def pearson_r2(predicted: np.ndarray, true: np.ndarray) -> float:
    """Squared Pearson correlation: the R² of the best linear fit (blind to scale and offset errors)."""
    predicted, true = np.ravel(predicted), np.ravel(true)
    if predicted.std() == 0 or true.std() == 0:
        return 0.0
    return float(np.corrcoef(predicted, true)[0, 1] ** 2)


def mean_pearson(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean over columns (nodes) of the Pearson correlation between predicted and true time series (T, N);
    a column that is constant in either contributes 0. Computed in float64, as :func:`r2_identity`."""
    p = predicted.astype(np.float64) - predicted.mean(0, dtype=np.float64)
    t = true.astype(np.float64) - true.mean(0, dtype=np.float64)
    denom = np.sqrt((p**2).sum(0) * (t**2).sum(0))
    r = np.divide((p * t).sum(0), denom, out=np.zeros(p.shape[1]), where=denom > 0)
    return float(r.mean())


def matched_accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy of cluster labels after the best one-to-one matching of clusters to true classes
    (Hungarian algorithm). Label -1 (noise) never matches, so it always counts as wrong."""
    clusters = np.unique(labels[labels >= 0])
    classes = np.unique(truth)
    if clusters.size == 0:
        return 0.0
    overlap = np.array([[np.sum((labels == c) & (truth == k)) for k in classes] for c in clusters])
    rows, cols = linear_sum_assignment(-overlap)
    return float(overlap[rows, cols].sum() / truth.size)


def cluster_embeddings(
    embedding: np.ndarray, truth: np.ndarray, *, min_samples: int = 10, eps_factor: float = 1.5
) -> dict[str, float]:
    """DBSCAN on the embeddings, scored against the true types.

    ``eps`` is ``eps_factor`` times the median distance to each point's ``min_samples``-th neighbour, so the
    test is invariant to the embedding's scale and rotation. On synthetic data these defaults never split
    one Gaussian blob of 100 points and always separate two blobs 6 standard deviations apart; per-axis
    z-scoring with a fixed eps split a single blob in half of the draws.

    Returns ``accuracy`` (Hungarian-matched), ``n_clusters`` and ``silhouette`` (0 when fewer than two
    clusters are found, where the silhouette is undefined).
    """
    k = min(min_samples, len(embedding) - 1)
    distances = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)[0][:, -1]
    eps = eps_factor * float(np.median(distances))
    if eps <= 0:
        labels = np.zeros(len(embedding), dtype=int)
    else:
        labels = DBSCAN(eps=eps, min_samples=k).fit_predict(embedding)
    n_clusters = int(np.unique(labels[labels >= 0]).size)
    clustered = labels >= 0
    silhouette = 0.0
    if n_clusters >= 2 and clustered.sum() > n_clusters:
        silhouette = float(silhouette_score(embedding[clustered], labels[clustered]))
    return {"accuracy": matched_accuracy(labels, truth), "n_clusters": n_clusters, "silhouette": silhouette}


def linear_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y = a x + b."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)
