"""Pictures of an exploration, redrawn after every round: the tree and the metric over iterations."""

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gnnlab.config.explore import ExploreConfig  # noqa: E402
from gnnlab.explore.store import Node  # noqa: E402


def _metric(spec: ExploreConfig, node: Node) -> float:
    value = (node.metrics or {}).get(spec.metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def plot_tree(spec: ExploreConfig, nodes: Sequence[Node], path: Path) -> Path:
    """Nodes at (iteration, depth in their block), edges to parents, coloured by the metric; failed nodes as
    red crosses, robustness re-runs as small dots beside their node, dashed lines at block boundaries."""
    finished = [n for n in nodes if n.is_finished]
    by_id = {n.id: n for n in nodes}
    depth: dict[int, int] = {}
    for n in nodes:  # ids ascend, so a parent's depth is known before its children's
        if n.robust_of is not None:
            depth[n.id] = depth.get(n.robust_of, 0)
        elif n.parent in by_id and by_id[n.parent].block == n.block:
            depth[n.id] = depth[n.parent] + 1
        else:
            depth[n.id] = 0
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(nodes) + 2), 4.2), layout="constrained")
    for n in finished:
        if n.parent in by_id and by_id[n.parent].block == n.block:
            ax.plot([n.parent, n.id], [depth[n.parent], depth[n.id]], color="0.75", lw=0.8, zorder=1)
    ok = [n for n in finished if n.status == "done" and n.robust_of is None]
    values = [_metric(spec, n) for n in ok]
    scatter = ax.scatter(
        [n.id for n in ok], [depth[n.id] for n in ok], c=values, cmap="viridis", s=60, zorder=2
    )
    reruns = [n for n in finished if n.robust_of is not None]
    ax.scatter(
        [n.id for n in reruns],
        [depth[n.id] + 0.25 for n in reruns],
        color="0.3",
        s=12,
        zorder=2,
        label="re-run",
    )
    failed = [n for n in finished if n.status == "failed"]
    ax.scatter(
        [n.id for n in failed],
        [depth[n.id] for n in failed],
        marker="x",
        color="tab:red",
        s=60,
        zorder=3,
        label="failed",
    )
    for b in sorted({n.block for n in nodes})[1:]:
        first = min(n.id for n in nodes if n.block == b)
        ax.axvline(first - 0.5, color="0.5", ls="--", lw=0.8)
    if values:
        fig.colorbar(scatter, ax=ax, label=spec.metric)
    ax.set(xlabel="iteration", ylabel="depth in block tree", title="exploration tree")
    ax.invert_yaxis()
    if reruns or failed:
        ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_progress(spec: ExploreConfig, nodes: Sequence[Node], path: Path) -> Path:
    """The metric of every finished node over iterations, coloured by block, with the best so far."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    finished = [n for n in nodes if n.is_finished]
    blocks = sorted({n.block for n in finished})
    colours = plt.cm.tab10(np.arange(max(1, len(blocks))) % 10)
    for colour, b in zip(colours, blocks, strict=False):
        members = [n for n in finished if n.block == b]
        ax.scatter(
            [n.id for n in members],
            [_metric(spec, n) for n in members],
            color=colour,
            s=18,
            label=f"block {b}",
        )
    failed = [n for n in finished if n.status == "failed"]
    if failed:
        ax.scatter(
            [n.id for n in failed], [0.0] * len(failed), marker="x", color="tab:red", label="failed (at 0)"
        )
    ax.set(xlabel="iteration", ylabel=spec.metric, title=f"{spec.metric} per iteration")
    if finished:
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["plot_progress", "plot_tree"]
