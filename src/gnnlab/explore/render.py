"""The files of the seeds' protocol, rendered deterministically from the store (never parsed back):

* ``analysis.md`` — one ``## Iter N:`` entry per finished node, block summaries between blocks;
* ``memory.md`` — bounded working memory: principles with their supporting iterations, the current block,
  strategy outcomes; older blocks shrink to one line each;
* ``ucb_scores.txt`` — the current block's UCB table, highest first;
* ``protocol.md`` — the immutable part (metric, goal, forbidden actions, the no-label rule) and the
  rewritable rules; ``protocol/block_NNN.md`` keeps every version and ``protocol/versions.diff`` the diffs.
"""

import math
from collections.abc import Sequence
from typing import Any

from gnnlab.config.explore import ExploreConfig, Target
from gnnlab.explore.knowledge import Rules, improved, principles
from gnnlab.explore.space import get_value
from gnnlab.explore.store import BlockRecord, Node
from gnnlab.explore.tree import UcbEntry, node_rewards

MEMORY_PRINCIPLES = 10  # memory.md keeps at most this many principles ...
MEMORY_FULL_BLOCKS = 2  # ... and this many past blocks in full; older ones shrink to one line
OTHER_METRICS = 6  # metrics shown beside the goal metric in an analysis entry

PROTOCOL_RULES_HEADER = "## Rules (rewritten at block ends)"


def fmt(value: Any) -> str:
    """Numbers in a form that reads back unambiguously: 4 significant digits, exponent when needed."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def goal_text(spec: ExploreConfig) -> str:
    if isinstance(spec.goal, Target):
        target = fmt(spec.goal.target)
        return f"bring {spec.metric} to {target} (reward = -|{spec.metric} - {target}|)"
    return f"{spec.goal} {spec.metric}"


def classify(spec: ExploreConfig, node: Node, rewards: dict[int, float], best: float | None) -> str:
    """converged (within 1 % of the best reward so far), partial, or failed."""
    if node.status == "failed":
        return "failed"
    reward = rewards.get(node.robust_of or node.id)
    if reward is None or best is None:
        return "partial"
    return "converged" if reward >= best - 0.01 * max(1.0, abs(best)) else "partial"


def _metrics_line(spec: ExploreConfig, metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "none"
    shown = [spec.metric] + [
        k
        for k, v in metrics.items()
        if k != spec.metric and "_gt_" not in k and isinstance(v, int | float) and not isinstance(v, bool)
    ][:OTHER_METRICS]
    return ", ".join(f"{k}={fmt(metrics.get(k))}" for k in shown if k in metrics)


def _config_line(spec: ExploreConfig, config: dict[str, Any]) -> str:
    keys = [*spec.parameters, *spec.per_slot]
    return ", ".join(f"{k}={fmt(get_value(config, k))}" for k in keys)


def _mutation_line(node: Node, parent_config: dict[str, Any] | None) -> str:
    if node.robust_of is not None:
        return f"training.seed: re-run of node {node.robust_of} with seed {node.training_seed}"
    if not node.mutation:
        return "none (the block's root config)"
    parts = []
    for key, value in node.mutation.items():
        old = get_value(parent_config, key) if parent_config is not None else "?"
        parts.append(f"{key}: {fmt(old)} -> {fmt(value)}")
    return "; ".join(parts)


def analysis_md(spec: ExploreConfig, nodes: Sequence[Node], blocks: Sequence[BlockRecord], root: dict) -> str:
    rewards = node_rewards(spec, nodes)
    wins = improved(spec, nodes)
    by_id = {n.id: n for n in nodes}
    roots = {b.block: b.root_config for b in blocks}
    lines = [f"# Exploration log: {goal_text(spec)}", ""]
    best: float | None = None
    summaries = {b.block: b for b in blocks if b.summary is not None}
    current_block = None
    for node in nodes:
        if node.block != current_block:
            if current_block in summaries:
                lines += _block_summary(summaries[current_block])
            current_block = node.block
            lines += [f"# Block {node.block}", ""]
        if not node.is_finished:
            continue
        own = rewards.get(node.robust_of or node.id)
        if own is not None and node.status == "done":
            best = own if best is None else max(best, own)
        parent_config = by_id[node.parent].config if node.parent in by_id else roots.get(node.block, root)
        if node.status == "failed":
            observation = f"failed: {node.failure}"
        elif node.robust_of is not None:
            observation = (
                f"node {node.robust_of} scored {fmt(rewards.get(node.robust_of))} (mean over its runs)"
            )
        elif node.id in wins:
            observation = "improved on its reference" if wins[node.id] else "did not improve on its reference"
        else:
            observation = "first result of the block"
        lines += [
            f"## Iter {node.id}: {classify(spec, node, rewards, best)}",
            f"Node: id={node.id}, parent={node.parent if node.parent is not None else 'root'}",
            f"Mode/Strategy: {node.strategy} (slot {node.slot}, agent {node.agent})",
            f"Config: {_config_line(spec, node.config)}",
            f"Metrics: {_metrics_line(spec, node.metrics)}",
            f"Mutation: {_mutation_line(node, parent_config)}",
            f"Rationale: {node.rationale or 'none given'}",
            f"Observation: {observation}",
            f"Next: {_next_line(node, nodes)}",
            "",
        ]
    if current_block in summaries:
        lines += _block_summary(summaries[current_block])
    return "\n".join(lines).rstrip() + "\n"


def _next_line(node: Node, nodes: Sequence[Node]) -> str:
    """What followed from this node: its children, as recorded (not an intention)."""
    children = [n.id for n in nodes if n.parent == node.id or n.robust_of == node.id]
    return f"children {', '.join(map(str, children))}" if children else "no children yet"


def _block_summary(block: BlockRecord) -> list[str]:
    s = block.summary or {}
    lines = [
        f"## Block {block.block} summary",
        f"Best: node {s.get('best_node')} (reward {fmt(s.get('best_reward'))}); "
        f"converged: {'yes' if s.get('converged') else 'no'}",
        f"Branching rate {fmt(s.get('branching_rate'))}, improvement rate {fmt(s.get('improvement_rate'))}, "
        f"failed nodes: {s.get('failed') or 'none'}",
        f"Strategies: {', '.join(f'{k} x{v}' for k, v in (s.get('strategies') or {}).items()) or 'none'}",
    ]
    for reason in s.get("rule_changes", []):
        lines.append(f"Rule change: {reason}")
    if s.get("next_regime"):
        lines.append(f"Next regime: {s['next_regime']}")
    return lines + [""]


def memory_md(spec: ExploreConfig, nodes: Sequence[Node], blocks: Sequence[BlockRecord], block: int) -> str:
    rewards = node_rewards(spec, nodes)
    lines = ["# Working memory", "", "## Established principles"]
    found = principles(spec, nodes)
    lines += [f"- {p.text(spec.metric)}" for p in found[:MEMORY_PRINCIPLES]] or ["- none yet"]
    if len(found) > MEMORY_PRINCIPLES:
        lines.append(f"- ({len(found) - MEMORY_PRINCIPLES} weaker principles not shown)")
    lines += ["", "## Past blocks"]
    ended = [b for b in blocks if b.summary is not None]
    for b in ended[:-MEMORY_FULL_BLOCKS]:
        s = b.summary or {}
        lines.append(f"- block {b.block}: best node {s.get('best_node')} ({fmt(s.get('best_reward'))})")
    for b in ended[-MEMORY_FULL_BLOCKS:]:
        first, *rest = _block_summary(b)[1:-1]
        lines += [f"- block {b.block}: {first}", *(f"  {line}" for line in rest)]
    if not ended:
        lines.append("- none yet")
    lines += ["", f"## Current block ({block})"]
    current = [n for n in nodes if n.block == block and n.is_finished and n.robust_of is None]
    if current:
        best = max(current, key=lambda n: (rewards.get(n.id, -math.inf), -n.id))
        lines.append(
            f"- {len(current)} finished nodes; best node {best.id}: {spec.metric}="
            f"{fmt((best.metrics or {}).get(spec.metric))} (reward {fmt(rewards.get(best.id))})"
        )
    else:
        lines.append("- no finished node yet")
    lines += ["", "## Strategy outcomes"]
    wins = improved(spec, nodes)
    outcomes: dict[str, list[bool]] = {}
    for n in nodes:
        if n.id in wins:
            outcomes.setdefault(n.strategy, []).append(wins[n.id])
    for strategy, results in sorted(outcomes.items()):
        lines.append(f"- {strategy}: {sum(results)}/{len(results)} improved")
    if not outcomes:
        lines.append("- none yet")
    return "\n".join(lines) + "\n"


def ucb_txt(spec: ExploreConfig, entries: Sequence[UcbEntry], nodes: Sequence[Node]) -> str:
    by_id = {n.id: n for n in nodes}
    lines = []
    for e in entries:
        node = by_id[e.node]
        metric = (node.metrics or {}).get(spec.metric)
        parent = "root" if e.parent is None else e.parent
        mutation = "; ".join(f"{k}={fmt(v)}" for k, v in node.mutation.items()) or "none"
        lines.append(
            f"Node {e.node}: UCB={e.ucb:.3f}, parent={parent}, visits={e.visits}, reward={e.reward:.4g}, "
            f"{spec.metric}={fmt(metric)}, Mutation={mutation}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def protocol_immutable(spec: ExploreConfig) -> str:
    """The part of the protocol no rewrite may touch."""
    frozen = [k for k, p in spec.parameters.items() if p.frozen]
    searchable = [k for k, p in spec.parameters.items() if not p.frozen]
    lines = [
        "# Exploration protocol",
        "",
        "## Goal (immutable)",
        f"- {goal_text(spec)}; a failed or non-finite run scores min(0, worst finite reward).",
        f"- Blocks of {spec.n_iter_block} iterations, {spec.slots} slots; UCB form '{spec.ucb_form}', "
        f"c = {fmt(spec.ucb_c)}; the tree restarts at every block.",
        "",
        "## Forbidden actions (immutable)",
        f"- Change only the declared parameters: {', '.join(searchable)}.",
        f"- Frozen keys: {', '.join(frozen) or 'none'}; per-slot keys: {', '.join(spec.per_slot) or 'none'}.",
        "- Every proposal is validated; an invalid one is rejected with its reason, the rule agent decides.",
        "",
        "## No labels (immutable)",
        "- Training never reads ground truth (parameters, types, clean trajectories): a test enforces it.",
        "- Metrics are scored after training, by the evaluation layer only.",
        "",
    ]
    return "\n".join(lines)


def protocol_md(spec: ExploreConfig, rules: Rules) -> str:
    return protocol_immutable(spec) + "\n".join([PROTOCOL_RULES_HEADER, *rules.lines(spec.slots)]) + "\n"


def check_protocol(spec: ExploreConfig, text: str) -> None:
    """Raise ``ValueError`` if a rewritten protocol changed its immutable part."""
    if not text.startswith(protocol_immutable(spec)):
        raise ValueError("a protocol rewrite may change only the rules section; its immutable part changed")


__all__ = ["analysis_md", "check_protocol", "classify", "fmt", "memory_md", "protocol_md", "ucb_txt"]
