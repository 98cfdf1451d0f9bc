"""What the finished nodes teach: mutation effects, established principles, block statistics, and the rules
they rewrite. Pure functions of the nodes, so the rendered memory, the rule agent and the block-end rewrite
all read the same facts.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

from gnnlab.config.explore import ExploreConfig
from gnnlab.explore.space import get_value
from gnnlab.explore.store import Node
from gnnlab.explore.tree import node_rewards

IMPROVEMENT_EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class Effect:
    """One single-key mutation and the reward change it caused (node minus its reference)."""

    node: int
    key: str
    old: Any
    new: Any
    delta: float

    @property
    def direction(self) -> str:
        """'up'/'down' for numbers, the new value for anything else: the unit a principle generalises over."""
        if isinstance(self.new, int | float) and not isinstance(self.new, bool):
            return "up" if self.new > self.old else "down"
        return repr(self.new)


@dataclasses.dataclass(frozen=True)
class Principle:
    key: str
    direction: str
    helps: bool
    support: tuple[int, ...]
    mean_delta: float

    def text(self, metric: str) -> str:
        verb = "improves" if self.helps else "hurts"
        change = (
            f"{self.key} {self.direction}"
            if self.direction in ("up", "down")
            else f"{self.key}={self.direction}"
        )
        iters = ", ".join(str(i) for i in self.support)
        return f"{change} {verb} {metric} (mean change {self.mean_delta:+.4g}; iterations {iters})"


def reference(node: Node, nodes_by_id: dict[int, Node], block_roots: dict[int, int]) -> int | None:
    """The node a result is compared with: its parent, or the block's baseline run for root children."""
    if node.robust_of is not None:
        return None
    if node.parent is not None:
        return node.parent
    baseline = block_roots.get(node.block)
    return baseline if baseline != node.id else None


def baselines(nodes: Sequence[Node]) -> dict[int, int]:
    """Per block, the node that ran the block's root config unchanged (its baseline), if any."""
    out: dict[int, int] = {}
    for n in nodes:
        if n.parent is None and n.robust_of is None and not n.mutation and n.block not in out:
            out[n.block] = n.id
    return out


def improved(spec: ExploreConfig, nodes: Sequence[Node]) -> dict[int, bool]:
    """Per finished tree node with a finished reference: did it beat that reference?"""
    rewards = node_rewards(spec, nodes)
    by_id = {n.id: n for n in nodes}
    roots = baselines(nodes)
    out = {}
    for n in nodes:
        ref = reference(n, by_id, roots)
        if n.id in rewards and ref is not None and ref in rewards:
            out[n.id] = rewards[n.id] > rewards[ref] + IMPROVEMENT_EPS
    return out


def effects(spec: ExploreConfig, nodes: Sequence[Node]) -> list[Effect]:
    """Reward changes of every finished single-key mutation with a finished reference."""
    rewards = node_rewards(spec, nodes)
    by_id = {n.id: n for n in nodes}
    roots = baselines(nodes)
    out = []
    for n in nodes:
        ref = reference(n, by_id, roots)
        if n.id not in rewards or ref is None or ref not in rewards or len(n.mutation) != 1:
            continue
        ((key, new),) = n.mutation.items()
        try:
            old = get_value(by_id[ref].config, key)
        except KeyError:
            continue
        if old == new:
            continue
        out.append(Effect(n.id, key, old, new, rewards[n.id] - rewards[ref]))
    return out


def principles(spec: ExploreConfig, nodes: Sequence[Node], *, min_support: int = 2) -> list[Principle]:
    """Mutations seen at least ``min_support`` times, always with the same sign of effect."""
    groups: dict[tuple[str, str], list[Effect]] = {}
    for effect in effects(spec, nodes):
        if abs(effect.delta) > IMPROVEMENT_EPS:
            groups.setdefault((effect.key, effect.direction), []).append(effect)
    out = []
    for (key, direction), group in sorted(groups.items()):
        signs = {e.delta > 0 for e in group}
        if len(group) >= min_support and len(signs) == 1:
            mean = sum(e.delta for e in group) / len(group)
            out.append(Principle(key, direction, signs.pop(), tuple(e.node for e in group), mean))
    return sorted(out, key=lambda p: (-abs(p.mean_delta), p.key))


def success_rates(spec: ExploreConfig, nodes: Sequence[Node]) -> dict[str, tuple[int, int]]:
    """Per key: (mutations that improved, mutations tried), over single-key mutations."""
    out: dict[str, tuple[int, int]] = {}
    for effect in effects(spec, nodes):
        wins, total = out.get(effect.key, (0, 0))
        out[effect.key] = (wins + (effect.delta > IMPROVEMENT_EPS), total + 1)
    return out


@dataclasses.dataclass(frozen=True)
class BlockStats:
    """The seeds' block statistics: how often the search branched, how often it improved, whether stuck."""

    n_nodes: int
    branching_rate: float  # share of nodes whose parent is not the node run just before in the same slot
    improvement_rate: float  # share of nodes that beat their reference
    stuck: bool  # the block's best did not improve over its second half
    best_node: int | None
    best_reward: float | None


def block_stats(spec: ExploreConfig, nodes: Sequence[Node], block: int) -> BlockStats:
    in_block = [n for n in nodes if n.block == block and n.robust_of is None and n.is_finished]
    rewards = node_rewards(spec, nodes)
    wins = improved(spec, nodes)
    last_in_slot: dict[int, int] = {}
    branches = 0
    for n in in_block:
        previous = last_in_slot.get(n.slot)
        if previous is not None and n.parent != previous:
            branches += 1
        last_in_slot[n.slot] = n.id
    compared = [wins[n.id] for n in in_block if n.id in wins]
    scored = [(rewards[n.id], -n.id) for n in in_block if n.id in rewards]
    best = max(scored) if scored else None
    half = len(in_block) // 2
    first_best = max((rewards[n.id] for n in in_block[:half] if n.id in rewards), default=None)
    stuck = best is not None and first_best is not None and best[0] <= first_best + IMPROVEMENT_EPS
    return BlockStats(
        n_nodes=len(in_block),
        branching_rate=branches / max(1, len(in_block) - len(last_in_slot)),
        improvement_rate=sum(compared) / len(compared) if compared else 0.0,
        stuck=bool(stuck),
        best_node=None if best is None else -best[1],
        best_reward=None if best is None else best[0],
    )


@dataclasses.dataclass(frozen=True)
class Rules:
    """The rewritable rule section of the protocol, as typed settings the rule agent obeys.

    A rewrite can only change these values; the protocol's immutable part (metric, goal, forbidden
    actions, the no-label rule) is not among them, so it cannot change.
    """

    ucb_c_scale: float = 1.0  # multiplies explore.ucb_c
    stuck_after: int = 0  # iterations without a new best before switching strategy (0: two rounds)
    multi_mutation: bool = False  # when stuck, exploit mutates two keys at once
    failure_probe: bool = True  # after three improvements in a row, probe a range limit

    def lines(self, slots: int) -> list[str]:
        stuck = self.stuck_after or 2 * slots
        return [
            f"- Parent selection: UCB with c = explore.ucb_c x {self.ucb_c_scale:g}.",
            f"- Stuck after {stuck} iterations without a new block best: switch strategy"
            + (" (mutate two keys at once)." if self.multi_mutation else " (recombine, then explore)."),
            "- After three improvements in a row: "
            + ("probe the failure boundary of one key." if self.failure_probe else "keep exploiting."),
            "- Re-run a block best with the robustness seeds once a round passes without beating it.",
        ]


def rewrite_rules(rules: Rules, stats: BlockStats, slots: int) -> tuple[Rules, list[str]]:
    """The seeds' block-end rule edits, driven by the block statistics; returns the rules and why."""
    reasons = []
    scale, stuck_after, multi, probe = (
        rules.ucb_c_scale,
        rules.stuck_after,
        rules.multi_mutation,
        rules.failure_probe,
    )
    if stats.n_nodes and stats.branching_rate < 0.2:
        scale = min(4.0, scale * 1.5)
        reasons.append(f"branching rate {stats.branching_rate:.0%} < 20%: explore more (c x{scale:g})")
    elif stats.branching_rate > 0.8:
        scale = max(0.25, scale / 1.5)
        reasons.append(f"branching rate {stats.branching_rate:.0%} > 80%: exploit more (c x{scale:g})")
    if stats.stuck or (stats.n_nodes and stats.improvement_rate < 0.1):
        stuck_after = max(slots, (stuck_after or 2 * slots) // 2)
        multi = True
        reasons.append(
            f"improvement rate {stats.improvement_rate:.0%}{', stuck' if stats.stuck else ''}: "
            f"switch strategy sooner (after {stuck_after}) and mutate two keys"
        )
    elif stats.improvement_rate > 0.5:
        multi = False
        probe = True
        reasons.append(
            f"improvement rate {stats.improvement_rate:.0%} > 50%: keep single-key steps, probe limits"
        )
    return Rules(scale, stuck_after, multi, probe), reasons


__all__ = [
    "BlockStats",
    "Effect",
    "Principle",
    "Rules",
    "baselines",
    "block_stats",
    "effects",
    "improved",
    "principles",
    "rewrite_rules",
    "success_rates",
]
