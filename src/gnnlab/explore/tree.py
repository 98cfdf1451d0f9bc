"""Rewards and UCB over the tree of experiments: pure functions of the nodes, no I/O.

Reward from the goal: ``maximize`` → the metric, ``minimize`` → −metric, ``target: v`` → −|metric − v|.
A failed or non-finite run is never dropped: it gets the *failure reward* min(0, worst finite reward), so it
ranks below every real result (0 when all rewards are non-negative, as for R² that did not go negative).
A node re-run with other training seeds is scored by the mean over its runs.

UCB, per node u of the current block (nodes whose parent lies in an earlier block hang from the root):

* ``seeds``: R(u) + c·√N / (1 + V(u)), V = 1 + descendants (re-runs included), N = nodes in the block;
* ``ucb1``:  R(u) + c·√(ln N / V(u)).
"""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from gnnlab.config.explore import ExploreConfig, Target
from gnnlab.explore.store import Node


def metric_reward(spec: ExploreConfig, metrics: dict[str, Any] | None) -> float | None:
    """The reward of one run's metrics, or None if the run gave no finite value of the metric."""
    if not metrics:
        return None
    value = metrics.get(spec.metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if isinstance(spec.goal, Target):
        return -abs(float(value) - spec.goal.target)
    return float(value) if spec.goal == "maximize" else -float(value)


def node_rewards(spec: ExploreConfig, nodes: Sequence[Node]) -> dict[int, float]:
    """Reward of every finished tree node (re-runs folded into the node they repeat)."""
    own = {
        n.id: metric_reward(spec, n.metrics) if n.status == "done" else None for n in nodes if n.is_finished
    }
    finite = [r for r in own.values() if r is not None]
    failure = min([0.0, *finite])
    runs: dict[int, list[float]] = {}
    for n in nodes:
        if n.is_finished:
            reward = own[n.id]
            runs.setdefault(n.robust_of or n.id, []).append(failure if reward is None else reward)
    tree = {n.id for n in nodes if n.robust_of is None and n.is_finished}
    return {i: sum(runs[i]) / len(runs[i]) for i in tree}


def failure_reward(spec: ExploreConfig, nodes: Sequence[Node]) -> float:
    finite = [r for n in nodes if n.status == "done" if (r := metric_reward(spec, n.metrics)) is not None]
    return min([0.0, *finite])


@dataclasses.dataclass(frozen=True)
class UcbEntry:
    node: int
    ucb: float
    parent: int | None
    visits: int
    reward: float


def ucb_scores(
    spec: ExploreConfig, nodes: Sequence[Node], block: int, *, c_scale: float = 1.0
) -> list[UcbEntry]:
    """UCB of every finished tree node of ``block``, highest first (ties: lower id first)."""
    in_block = [n for n in nodes if n.block == block]
    ids = {n.id for n in in_block}
    rewards = node_rewards(spec, nodes)
    parent_of = {n.id: (n.robust_of or n.parent) for n in in_block}
    parent_of = {k: (v if v in ids else None) for k, v in parent_of.items()}
    descendants = dict.fromkeys(ids, 0)
    for n in in_block:
        ancestor = parent_of[n.id]
        while ancestor is not None:
            descendants[ancestor] += 1
            ancestor = parent_of[ancestor]
    total = len(in_block)
    c = spec.ucb_c * c_scale
    entries = []
    for n in in_block:
        if n.robust_of is not None or n.id not in rewards:
            continue
        visits = 1 + descendants[n.id]
        if spec.ucb_form == "seeds":
            bonus = c * math.sqrt(total) / (1 + visits)
        else:
            bonus = c * math.sqrt(math.log(total) / visits) if total > 1 else 0.0
        entries.append(UcbEntry(n.id, rewards[n.id] + bonus, parent_of[n.id], visits, rewards[n.id]))
    return sorted(entries, key=lambda e: (-e.ucb, e.node))


__all__ = ["UcbEntry", "failure_reward", "metric_reward", "node_rewards", "ucb_scores"]
