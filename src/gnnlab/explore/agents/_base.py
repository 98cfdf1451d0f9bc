"""The agent interface: how anything that proposes experiments plugs into the loop.

Contract (what the loop guarantees and what it expects):

* :meth:`Agent.propose` is called once per round with the slots to fill (iteration number, slot index, role)
  and a read-only :class:`Context`: every node so far, rewards, the current block's UCB table, the rules.
  It returns exactly one :class:`Proposal` per slot, in the same order. It must not run anything or write
  anywhere; the loop records, validates and executes.
* A proposal is never trusted: the loop checks it (:func:`validate_proposal`, which an agent may call
  itself, e.g. to re-ask a model) against the search space (declared, non-frozen,
  non-per-slot keys, typed values in range, a valid run config, a parent in the current block). An invalid
  proposal is recorded with its reason and the ``rule`` agent fills that slot instead. An agent that has
  nothing valid to offer for a slot returns a proposal with ``rejected`` set to the reason.
* Code edits (``explore.allow_code_edits``): on a block's first round ``context.code`` holds the editable
  files (path -> text, at the revision the block's root ran) and a proposal may carry ``code``, the edited
  files. The loop pre-flights and commits it (:mod:`gnnlab.explore.code_edits`); a rejected edit rejects the
  proposal. When an edited node crashes, :meth:`Agent.repair` is asked for fixed files with the traceback,
  up to ``explore.max_repair_attempts`` times; returning None (the default) rolls the node back to its
  parent's code at once.
* :meth:`Agent.end_block` is called once after every node of a block has finished; it returns the block
  summary, the rewritten rules and an optional regime for the next block. The default implementation is the
  seeds' statistics-driven rewrite; LLM agents may override it.
* An agent that calls a model keeps a record of each call; the loop takes them with :meth:`Agent.take_calls`
  after every :meth:`Agent.propose` and stores them (the agent itself writes nowhere).
* For ``--resume`` and ``replay`` to be exact, an agent's answers must depend only on its arguments
  (derive randomness from ``context.seed`` and the iteration numbers, never from hidden state).
"""

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

from gnnlab.config.explore import ExploreConfig
from gnnlab.errors import ConfigError
from gnnlab.explore.knowledge import BlockStats, Rules, block_stats, principles, rewrite_rules
from gnnlab.explore.space import SearchSpace, set_values
from gnnlab.explore.store import LLMCall, Node
from gnnlab.explore.tree import UcbEntry, node_rewards


@dataclasses.dataclass(frozen=True)
class Slot:
    iteration: int
    slot: int
    role: str


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One experiment: a mutation of a parent's config (``parent=None``: the block's root config).

    A robustness re-run sets ``robust_of`` and ``training_seed`` and leaves ``mutation`` empty.
    """

    mutation: dict[str, Any]
    parent: int | None = None
    strategy: str = "exploit"
    rationale: str = ""
    robust_of: int | None = None
    training_seed: int | None = None
    rejected: str | None = None  # the agent gave up on this slot (and why): the rule agent decides it
    code: dict[str, str] | None = None  # edited files (path -> full text), code-edit rounds only


@dataclasses.dataclass(frozen=True)
class Context:
    spec: ExploreConfig
    space: SearchSpace
    nodes: tuple[Node, ...]
    block: int
    root_config: dict[str, Any]
    ucb: tuple[UcbEntry, ...]
    rules: Rules
    seed: int
    regimes_used: tuple[str | None, ...] = ()
    llm_spent_usd: float = 0.0  # what every recorded LLM call so far cost (budget checks survive resume)
    code: dict[str, str] | None = None  # the editable files, on rounds where code edits are allowed

    @property
    def rewards(self) -> dict[int, float]:
        return node_rewards(self.spec, self.nodes)

    def block_nodes(self, *, finished: bool = True, reruns: bool = False) -> list[Node]:
        return [
            n
            for n in self.nodes
            if n.block == self.block and (n.is_finished or not finished) and (reruns or n.robust_of is None)
        ]

    def config_of(self, parent: int | None) -> dict[str, Any]:
        if parent is None:
            return self.root_config
        return next(n.config for n in self.nodes if n.id == parent)

    def best(self) -> Node | None:
        """The block's best finished tree node (ties: the earlier one)."""
        rewards = self.rewards
        scored = [n for n in self.block_nodes() if n.id in rewards]
        return max(scored, key=lambda n: (rewards[n.id], -n.id)) if scored else None


def validate_proposal(context: Context, proposal: Proposal, slot: int) -> tuple[dict | None, str | None]:
    """The run config of a proposal, or why it is rejected (the loop's check, callable by agents)."""
    if proposal.rejected is not None:
        return None, proposal.rejected
    if proposal.code and context.code is None:
        return None, "code edits are allowed only at a block's first round, with explore.allow_code_edits"
    in_block = {n.id: n for n in context.block_nodes()}
    if proposal.robust_of is not None:
        node = in_block.get(proposal.robust_of)
        if node is None:
            return None, f"robust_of={proposal.robust_of} is not a finished node of block {context.block}"
        if proposal.mutation:
            return None, "a robustness re-run changes the training seed only"
        if proposal.training_seed not in context.spec.robustness_seeds:
            return None, f"training seed {proposal.training_seed} is not in explore.robustness_seeds"
        return set_values(node.config, {"training.seed": proposal.training_seed}), None
    if proposal.parent is not None and proposal.parent not in in_block:
        return None, f"parent {proposal.parent} is not a finished node of block {context.block}"
    if not proposal.mutation and proposal.parent is not None:
        return None, "the mutation changes nothing"
    try:
        config = context.space.apply(
            context.config_of(proposal.parent),
            proposal.mutation,
            slot,
            allow_empty=proposal.parent is None,
        )
    except ConfigError as exc:
        return None, str(exc)
    return config, None


@dataclasses.dataclass(frozen=True)
class BlockDecision:
    summary: dict[str, Any]
    rules: Rules
    regime: str | None
    reasons: tuple[str, ...] = ()


def default_end_block(context: Context) -> BlockDecision:
    """Summarise the block, rewrite the rules from its statistics, and move to the next unused regime once
    the block has converged (stuck: its best did not improve over its second half)."""
    stats: BlockStats = block_stats(context.spec, context.nodes, context.block)
    rules, reasons = rewrite_rules(context.rules, stats, context.spec.slots)
    in_block = context.block_nodes()
    strategies: dict[str, list[int]] = {}
    for n in in_block:
        strategies.setdefault(n.strategy, []).append(n.id)
    summary = {
        "block": context.block,
        "n_nodes": stats.n_nodes,
        "best_node": stats.best_node,
        "best_reward": stats.best_reward,
        "converged": stats.stuck,
        "branching_rate": stats.branching_rate,
        "improvement_rate": stats.improvement_rate,
        "failed": [n.id for n in in_block if n.status == "failed"],
        "strategies": {k: len(v) for k, v in sorted(strategies.items())},
        "principles": [p.text(context.spec.metric) for p in principles(context.spec, context.nodes)[:5]],
    }
    regime = None
    if stats.stuck and context.spec.regimes:
        unused = [r.name for r in context.spec.regimes if r.name not in context.regimes_used]
        if unused:
            regime = unused[0]
            reasons.append(f"block converged: next regime {regime!r}")
    return BlockDecision(summary, rules, regime, tuple(reasons))


class Agent(abc.ABC):
    """Proposes the experiments of a round and takes the block-end decisions. See the module docstring."""

    name: ClassVar[str]
    # True for agents that read ``DIR/workspace/``: the loop refreshes it before each of their rounds only
    reads_workspace: ClassVar[bool] = False

    @abc.abstractmethod
    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        """One proposal per slot, in order."""

    def end_block(self, context: Context) -> BlockDecision:
        return default_end_block(context)

    def repair(
        self, context: Context, node: Node, files: dict[str, str], traceback: str
    ) -> dict[str, str] | None:
        """Fixed versions of ``files`` (the crashed node's editable files) given the run's ``traceback``, or
        None to give up and roll the node back to its parent's code (the default)."""
        return None

    def take_calls(self) -> list[LLMCall]:
        """The model calls made since the last take (none for agents that call no model)."""
        return []


__all__ = ["Agent", "BlockDecision", "Context", "Proposal", "Slot", "default_end_block", "validate_proposal"]
