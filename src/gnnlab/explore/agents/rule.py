"""The built-in offline agent: the seed documents' strategies as typed mutations, deterministic per seed.

Per round, slot by slot (first applicable wins):

1. **baseline** — the first round of a block runs the block's root config unchanged, once.
   **screen** — then, in the first block, a two-level orthogonal array (columns of a Hadamard matrix of
   order 2^m, the largest that leaves the block a round for exploiting; row 0 is the baseline) over up to
   2^m − 1 keys, categorical and bool first, then int, then float; the second level is the other value, or
   the far end of a numeric range. Every key is changed in half the runs and every *pair* of keys appears
   in all four combinations: one-key-at-a-time steps cannot see interactions (a fix that only helps
   together with another looks harmful alone), a strength-2 array can.
   **screen-optimum** — once the screen is done, one run with every screened key at the level whose runs
   had the better mean reward (the classic confirmation run of a screening design).
2. **robustness** — in the round's last slot, re-run the block's best node with the next robustness seed,
   once a whole round has passed without beating it (a single run is not truth).
3. **recombine** (exploit slots) — graft onto the block's best node the mutations of the other nodes that
   beat their reference: all of them at once first, then one at a time.
4. by role:

   * **exploit** — the k-th highest-UCB node, one key stepped. Keys never mutated in the block come first
     (screening: categorical and bool keys before numeric ones, since a switch changes the model and a
     number only tunes it), then keys by their record of improvements. Numbers move a factor of 2 (log
     scale) or an eighth of the range, in the direction that helped before. When stuck (no new block best
     for ``rules.stuck_after`` iterations): **strategy-switch**, two keys at once if the rules say so.
   * **explore** (once the block has a result) — from the highest-UCB node, the key least mutated over
     the whole exploration, drawn from its whole range; after three improvements in a row, a
     **failure-probe** instead: one numeric key of the best node pushed to the far end of its range.
   * **principle-test** — re-test an established principle on the best node by undoing it; else
     **revert** a key of the highest-UCB node to its best ancestor's value; else exploit.

Every candidate whose config was already run (or planned this round) is skipped for the next one.
"""

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.linalg

from gnnlab.errors import ConfigError
from gnnlab.explore.agents._base import Agent, Context, Proposal, Slot
from gnnlab.explore.knowledge import IMPROVEMENT_EPS, effects, improved, principles, success_rates
from gnnlab.explore.space import get_value

DISCRETE = ("categorical", "bool")


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


class RuleAgent(Agent):
    name = "rule"

    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        rng = np.random.default_rng([context.seed, slots[0].iteration])
        seen = {_key(n.config) for n in context.nodes if n.block == context.block or n.robust_of is None}
        round_keys: Counter[str] = Counter()
        out: list[Proposal] = []
        exploit_rank = 0
        for position, slot in enumerate(slots):
            last = position == len(slots) - 1
            proposal = None
            for candidate in self._candidates(context, slot, rng, round_keys, exploit_rank, last, out):
                config = self._config(context, candidate, slot.slot)
                if config is None:
                    continue
                if candidate.robust_of is None and _key(config) in seen:
                    continue
                proposal = candidate
                seen.add(_key(config))
                round_keys.update(list(candidate.mutation))
                break
            if proposal is None:  # the whole neighbourhood is explored: draw every key afresh
                proposal = self._random_restart(context, slot, rng, seen)
            if slot.role == "exploit":
                exploit_rank += 1
            out.append(proposal)
        return out

    # --- candidates ---------------------------------------------------------------------------------------
    def _candidates(
        self,
        ctx: Context,
        slot: Slot,
        rng: np.random.Generator,
        round_keys: Counter[str],
        exploit_rank: int,
        last: bool,
        planned: list[Proposal],
    ) -> Iterator[Proposal]:
        finished = ctx.block_nodes()
        if (
            not ctx.block_nodes(finished=False)
            and not planned
            and _key(ctx.root_config) not in {_key(n.config) for n in ctx.nodes}
        ):
            yield Proposal({}, None, "baseline", "run the block's root config as it is")
        yield from self._screen(ctx)
        yield from self._screen_optimum(ctx)
        if last:
            yield from self._robustness(ctx, planned)
        if slot.role == "exploit":
            yield from self._recombine(ctx)
        stuck = self._stuck(ctx)
        if slot.role == "explore" and finished:  # before any result there is nothing to explore away from
            if ctx.rules.failure_probe and self._streak(ctx) >= 3:
                yield from self._failure_probe(ctx, rng)
            yield from self._explore(ctx, rng)
        if slot.role == "principle-test":
            yield from self._principle_test(ctx)
            yield from self._revert(ctx)
        parent = self._ucb_parent(ctx, exploit_rank if slot.role == "exploit" else 0)
        if stuck and ctx.rules.multi_mutation:
            yield from self._exploit(ctx, parent, rng, round_keys, n_keys=2, strategy="strategy-switch")
        yield from self._exploit(
            ctx, parent, rng, round_keys, n_keys=1, strategy="strategy-switch" if stuck else "exploit"
        )
        if not finished:
            return
        for entry in ctx.ucb:  # every other node, in UCB order, before giving up
            yield from self._exploit(ctx, entry.node, rng, round_keys, n_keys=1, strategy="exploit")

    def _screen_plan(self, ctx: Context) -> tuple[list[str], dict[str, Any], np.ndarray] | None:
        """Keys, their second level, and the ±1 design (row 0 = all at the root's values), or None."""
        if ctx.block != 1:
            return None
        rank = {"categorical": 0, "bool": 0, "int": 1, "float": 2}
        ordered = sorted(ctx.space.searchable, key=lambda k: rank[ctx.space.parameters[k].type])
        room = ctx.spec.n_iter_block - ctx.spec.slots
        if room < 4 or len(ordered) < 2:
            return None
        order = 1 << (room.bit_length() - 1)  # the largest power of two that leaves a round for exploiting
        keys = ordered[: order - 1]
        root = ctx.root_config
        levels = {k: self._alternative(ctx, k, get_value(root, k)) for k in keys}
        keys = [k for k in keys if levels[k] != get_value(root, k)]
        if len(keys) < 2:
            return None
        order = 1 << len(keys).bit_length() if (1 << (len(keys).bit_length() - 1)) <= len(keys) else order
        columns = np.random.default_rng([ctx.seed, 0]).permutation(order - 1)[: len(keys)] + 1
        design = scipy.linalg.hadamard(order)[:, columns]
        return keys, levels, design

    def _screen(self, ctx: Context) -> Iterator[Proposal]:
        plan = self._screen_plan(ctx)
        if plan is None:
            return
        keys, levels, design = plan
        for row in range(1, design.shape[0]):
            mutation = {k: levels[k] for k, level in zip(keys, design[row], strict=True) if level < 0}
            yield Proposal(
                mutation,
                None,
                "screen",
                f"orthogonal-array screening of {len(keys)} keys, row {row}/{len(design) - 1}",
            )

    def _screen_optimum(self, ctx: Context) -> Iterator[Proposal]:
        """Once the screen has finished: every screened key at the level with the better mean reward."""
        plan = self._screen_plan(ctx)
        if plan is None:
            return
        keys, levels, design = plan
        rewards = ctx.rewards
        rows = {}
        for n in ctx.block_nodes():
            if n.parent is None and n.robust_of is None and n.strategy in ("baseline", "screen"):
                flipped = tuple(-1 if k in n.mutation else 1 for k in keys)
                rows[flipped] = rewards.get(n.id)
        runs = [rows.get(tuple(r)) for r in design]
        if any(r is None for r in runs):
            return
        mutation = {}
        for j, key in enumerate(keys):
            flipped = [r for r, level in zip(runs, design[:, j], strict=True) if level < 0]
            kept = [r for r, level in zip(runs, design[:, j], strict=True) if level > 0]
            if np.mean(flipped) > np.mean(kept) + IMPROVEMENT_EPS:
                mutation[key] = levels[key]
        if mutation:
            yield Proposal(
                mutation,
                None,
                "screen-optimum",
                "every screened key at its level with the better mean reward",
            )

    @staticmethod
    def _alternative(ctx: Context, key: str, value: Any) -> Any:
        """The second level of a screened key: the other bool, the first other choice, the far end."""
        param = ctx.space.parameters[key]
        if param.type == "bool":
            return not value
        if param.type == "categorical":
            return next(c for c in param.choices or () if c != value)
        return ctx.space.extreme(key, value)

    def _ucb_parent(self, ctx: Context, rank: int) -> int | None:
        if not ctx.ucb:
            return None
        return ctx.ucb[min(rank, len(ctx.ucb) - 1)].node

    def _stuck(self, ctx: Context) -> bool:
        finished = ctx.block_nodes()
        window = ctx.rules.stuck_after or 2 * ctx.spec.slots
        if len(finished) <= window:
            return False
        rewards = ctx.rewards
        before = max((rewards.get(n.id, -np.inf) for n in finished[:-window]), default=-np.inf)
        recent = max((rewards.get(n.id, -np.inf) for n in finished[-window:]), default=-np.inf)
        return recent <= before + IMPROVEMENT_EPS

    def _streak(self, ctx: Context) -> int:
        wins = improved(ctx.spec, ctx.nodes)
        streak = 0
        for n in reversed(ctx.block_nodes()):
            if not wins.get(n.id, False):
                break
            streak += 1
        return streak

    def _robustness(self, ctx: Context, planned: list[Proposal]) -> Iterator[Proposal]:
        seeds = ctx.spec.robustness_seeds
        best = ctx.best()
        if not seeds or best is None:
            return
        finished = ctx.block_nodes()
        last_round = finished[-ctx.spec.slots :]
        if best in last_round:
            return  # a fresh best: give the search a round to beat it first
        done = {n.training_seed for n in ctx.nodes if n.robust_of == best.id}
        done |= {p.training_seed for p in planned if p.robust_of == best.id}
        for seed in seeds:
            if seed not in done and seed != best.training_seed:
                yield Proposal(
                    {},
                    best.id,
                    "robustness",
                    f"node {best.id} is the block best; re-run with training seed {seed}",
                    robust_of=best.id,
                    training_seed=seed,
                )
                return

    def _recombine(self, ctx: Context) -> Iterator[Proposal]:
        best = ctx.best()
        if best is None:
            return
        wins = improved(ctx.spec, ctx.nodes)
        rewards = ctx.rewards
        donors = sorted(
            (n for n in ctx.block_nodes() if wins.get(n.id) and n.mutation and n.id != best.id),
            key=lambda n: (-rewards[n.id], n.id),
        )
        grafts = []
        for donor in donors:
            graft = {k: v for k, v in donor.mutation.items() if get_value(best.config, k) != v}
            if graft:
                grafts.append((donor.id, graft))
        if len(grafts) > 1:
            union: dict[str, Any] = {}
            for _, graft in reversed(grafts):  # the better donor wins a conflict
                union.update(graft)
            ids = ", ".join(str(i) for i, _ in grafts)
            yield Proposal(
                union, best.id, "recombine", f"graft the improvements of nodes {ids} onto node {best.id}"
            )
        for donor_id, graft in grafts:
            yield Proposal(
                graft, best.id, "recombine", f"graft node {donor_id}'s improvement onto node {best.id}"
            )

    def _key_order(self, ctx: Context, rng: np.random.Generator, round_keys: Counter[str]) -> list[str]:
        tried = Counter(k for n in ctx.block_nodes(finished=False) for k in n.mutation) + round_keys
        rates = success_rates(ctx.spec, ctx.nodes)
        tiebreak = rng.permutation(len(ctx.space.searchable))

        def priority(item: tuple[int, str]) -> tuple:
            index, key = item
            wins, total = rates.get(key, (0, 0))
            discrete = ctx.space.parameters[key].type in DISCRETE
            if tried[key] == 0:
                return (0, 0 if discrete else 1, 0.0, 0, tiebreak[index])
            return (1, 0, -(wins + 1) / (total + 2), tried[key], tiebreak[index])

        return [key for _, key in sorted(enumerate(ctx.space.searchable), key=priority)]

    def _direction(self, ctx: Context, key: str, rng: np.random.Generator) -> int:
        """+1 or -1: the direction whose single-key moves of ``key`` improved more, else a coin flip."""
        score = {"up": 0.0, "down": 0.0}
        for effect in effects(ctx.spec, ctx.nodes):
            if effect.key == key and effect.direction in score:
                score[effect.direction] += effect.delta
        if score["up"] == score["down"]:
            return 1 if rng.integers(2) else -1
        return 1 if score["up"] > score["down"] else -1

    def _moves(self, ctx: Context, key: str, value: Any, rng: np.random.Generator) -> list[Any]:
        """Local moves of one key from ``value``, best first."""
        param = ctx.space.parameters[key]
        if param.type == "bool":
            return [not value]
        if param.type == "categorical":
            others = [c for c in param.choices or () if c != value]
            return [others[i] for i in rng.permutation(len(others))]
        direction = self._direction(ctx, key, rng)
        moves = [ctx.space.step(key, value, direction), ctx.space.step(key, value, -direction)]
        return [m for m in moves if m != value]

    def _exploit(
        self,
        ctx: Context,
        parent: int | None,
        rng: np.random.Generator,
        round_keys: Counter[str],
        *,
        n_keys: int,
        strategy: str,
    ) -> Iterator[Proposal]:
        base = ctx.config_of(parent)
        keys = self._key_order(ctx, rng, round_keys)
        if n_keys == 2:
            for first, second in zip(keys, keys[1:], strict=False):
                m1 = self._moves(ctx, first, get_value(base, first), rng)
                m2 = self._moves(ctx, second, get_value(base, second), rng)
                if m1 and m2:
                    yield Proposal(
                        {first: m1[0], second: m2[0]},
                        parent,
                        strategy,
                        f"stuck: move {first} and {second} together",
                    )
            return
        for key in keys:
            for value in self._moves(ctx, key, get_value(base, key), rng):
                old = get_value(base, key)
                yield Proposal(
                    {key: value},
                    parent,
                    strategy,
                    f"{key}: {old!r} -> {value!r} from node {parent or 'root'}",
                )

    def _explore(self, ctx: Context, rng: np.random.Generator) -> Iterator[Proposal]:
        parent = self._ucb_parent(ctx, 0)
        counts = Counter(k for n in ctx.nodes for k in n.mutation)
        order = sorted(ctx.space.searchable, key=lambda k: (counts[k], rng.random()))
        for key in order:
            for _ in range(3):
                value = ctx.space.sample(key, rng)
                if value != get_value(ctx.config_of(parent), key):
                    yield Proposal(
                        {key: value}, parent, "explore", f"{key} is the least explored key; draw it afresh"
                    )
                    break

    def _failure_probe(self, ctx: Context, rng: np.random.Generator) -> Iterator[Proposal]:
        best = ctx.best()
        if best is None:
            return
        numeric = [k for k in ctx.space.searchable if ctx.space.parameters[k].type not in DISCRETE]
        for index in rng.permutation(len(numeric)):
            key = numeric[index]
            value = ctx.space.extreme(key, get_value(best.config, key))
            if value != get_value(best.config, key):
                yield Proposal(
                    {key: value},
                    best.id,
                    "failure-probe",
                    f"three improvements in a row: where does {key} break?",
                )

    def _principle_test(self, ctx: Context) -> Iterator[Proposal]:
        best = ctx.best()
        if best is None:
            return
        tested = {n.rationale for n in ctx.block_nodes(finished=False) if n.strategy == "principle-test"}
        for principle in principles(ctx.spec, ctx.nodes):
            if not principle.helps:
                continue
            key = principle.key
            current = get_value(best.config, key)
            rationale = f"re-test: {principle.text(ctx.spec.metric)}"
            if rationale in tested:
                continue
            if principle.direction in ("up", "down"):
                undo = ctx.space.step(key, current, -1 if principle.direction == "up" else 1)
            else:
                if repr(current) != principle.direction:
                    continue
                undo = next(
                    (
                        e.old
                        for e in effects(ctx.spec, ctx.nodes)
                        if e.key == key and repr(e.new) == principle.direction
                    ),
                    None,
                )
            if undo is not None and undo != current:
                yield Proposal({key: undo}, best.id, "principle-test", rationale)

    def _revert(self, ctx: Context) -> Iterator[Proposal]:
        """For the highest-UCB node: a key set back to the value of its best ancestor."""
        if not ctx.ucb:
            return
        rewards = ctx.rewards
        by_id = {n.id: n for n in ctx.nodes}
        node = by_id[ctx.ucb[0].node]
        ancestors = []
        cursor = node.parent
        while cursor is not None and cursor in by_id:
            ancestors.append(by_id[cursor])
            cursor = by_id[cursor].parent
        scored = [a for a in ancestors if a.id in rewards]
        if not scored:
            return
        best_ancestor = max(scored, key=lambda a: rewards[a.id])
        if rewards[best_ancestor.id] <= rewards.get(node.id, -np.inf):
            return
        for key in ctx.space.searchable:
            old, now = get_value(best_ancestor.config, key), get_value(node.config, key)
            if old != now:
                yield Proposal(
                    {key: old}, node.id, "revert", f"{key} back to node {best_ancestor.id}'s value"
                )

    def _random_restart(self, ctx: Context, slot: Slot, rng: np.random.Generator, seen: set[str]) -> Proposal:
        for _ in range(100):
            mutation = {k: ctx.space.sample(k, rng) for k in ctx.space.searchable}
            config = self._config(ctx, Proposal(mutation), slot.slot)
            if config is not None and _key(config) not in seen:
                seen.add(_key(config))
                return Proposal(
                    mutation, None, "random-restart", "every neighbour of the tree was already run"
                )
        raise RuntimeError("the search space is exhausted: every configuration was already run")

    @staticmethod
    def _config(ctx: Context, proposal: Proposal, slot: int) -> dict[str, Any] | None:
        if proposal.robust_of is not None:
            return ctx.config_of(proposal.robust_of)
        try:
            return ctx.space.apply(ctx.config_of(proposal.parent), proposal.mutation, slot, allow_empty=True)
        except ConfigError:
            return None


__all__ = ["RuleAgent"]
