"""Connectivity metrics of the signal system.

Every score compares learned edge weights with the true W on the identity line. The only rescaling is one
global positive ``scale`` supplied by the caller from the model's documented gauge, never fitted to the
answer, so a sign-flipped W or a wrong overall scale is penalised. Scores are computed on the true edges,
not on the dense N x N matrix, whose many exact zeros would otherwise make absent entries look recovered.
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from gnnlab.evaluation.metrics import pearson_r2, r2_identity


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
