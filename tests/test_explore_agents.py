"""The rule agent's strategies, each on a context built by hand."""

import itertools

import numpy as np
from explore_helpers import TINY, finished_store, node_row, spec

from gnnlab.config import parse_config
from gnnlab.explore.agents import Context, RuleAgent, Slot
from gnnlab.explore.knowledge import Rules
from gnnlab.explore.space import SearchSpace
from gnnlab.explore.tree import ucb_scores

ROOT = parse_config({k: v for k, v in TINY.items() if k != "explore"}).model_dump(mode="json")


def context(nodes=(), **explore):
    s = spec(**explore)
    return Context(s, SearchSpace(s), tuple(nodes), 1, ROOT, tuple(ucb_scores(s, nodes, 1)), Rules(), seed=0)


def slots(first, n, roles=("exploit", "exploit", "explore", "principle-test")):
    return [Slot(first + i, i, roles[i % len(roles)]) for i in range(n)]


def test_first_round_runs_the_root_config_then_screens():
    proposals = RuleAgent().propose(context(n_iter_block=12, slots=4), slots(1, 4))
    assert proposals[0].strategy == "baseline" and proposals[0].mutation == {}
    assert [p.strategy for p in proposals[1:]] == ["screen"] * 3


def test_screening_design_shows_every_pair_of_keys_in_all_four_combinations():
    agent = RuleAgent()
    ctx = context(n_iter_block=12, slots=4)
    rows = [{}] + [p.mutation for p in agent._screen(ctx)]
    keys, levels, design = agent._screen_plan(ctx)
    assert len(rows) == 8 and len(keys) == 4  # 4 searchable keys fit an 8-run array
    for a, b in itertools.combinations(keys, 2):
        combos = {(a in row, b in row) for row in rows}
        assert combos == {(False, False), (False, True), (True, False), (True, True)}, (a, b)
    assert all(sum(key in row for row in rows) == 4 for key in keys)  # each key changed in half the runs


def test_screen_optimum_sets_each_key_to_its_better_level(tmp_path):
    agent = RuleAgent()
    ctx = context(n_iter_block=12, slots=4)
    keys, levels, _ = agent._screen_plan(ctx)
    rows = [node_row(1, strategy="baseline", config=ROOT)]
    results = {1: 0.0}
    for i, p in enumerate(agent._screen(ctx), start=2):
        rows.append(node_row(i, mutation=p.mutation, strategy="screen", config=ROOT))
        results[i] = 1.0 * (keys[0] in p.mutation) - 0.5 * (
            keys[1] in p.mutation
        )  # keys[0] helps, keys[1] hurts
    store = finished_store(tmp_path / "s.sqlite", rows, results)
    (optimum,) = agent._screen_optimum(context(store.nodes(), n_iter_block=12, slots=4))
    assert optimum.mutation == {keys[0]: levels[keys[0]]}


def test_no_screen_when_it_would_fill_the_block():
    proposals = RuleAgent().propose(context(n_iter_block=4, slots=2), slots(1, 2))
    assert [p.strategy for p in proposals] == ["baseline", "exploit"]
    assert len(proposals[1].mutation) == 1


def test_proposals_never_repeat_a_config(tmp_path):
    rows = [node_row(1, strategy="baseline", config=ROOT)]
    store = finished_store(tmp_path / "s.sqlite", rows, {1: 0.5})
    ctx = context(store.nodes(), n_iter_block=4, slots=4)
    proposals = RuleAgent().propose(ctx, slots(2, 4))
    configs = [ctx.space.apply(ROOT if p.parent is None else ROOT, p.mutation, 0) for p in proposals]
    assert len({str(c) for c in configs}) == 4 and ROOT not in configs


def test_a_stable_block_best_gets_a_robustness_rerun(tmp_path):
    rows = [node_row(1, strategy="baseline", config=ROOT)] + [
        node_row(
            i,
            parent=1,
            config={**ROOT, "training": {**ROOT["training"], "lbfgs_iterations": i}},
            mutation={"training.lbfgs_iterations": i},
        )
        for i in (2, 3, 4, 5)
    ]
    store = finished_store(tmp_path / "s.sqlite", rows, {1: 0.9, 2: 0.1, 3: 0.2, 4: 0.3, 5: 0.4})
    ctx = context(store.nodes(), n_iter_block=8, slots=4, robustness_seeds=[7])  # too short to screen
    last = RuleAgent().propose(ctx, slots(6, 4))[-1]
    assert last.strategy == "robustness" and last.robust_of == 1 and last.training_seed == 7


def test_improvements_found_apart_are_recombined_on_the_best_node(tmp_path):
    def child(i, key, value):
        section, name = key.split(".")
        config = {**ROOT, section: {**ROOT[section], name: value}}
        return node_row(i, parent=1, config=config, mutation={key: value})

    rows = [
        node_row(1, strategy="baseline", config=ROOT),
        child(2, "training.loss_normalisation", "none"),
        child(3, "model.activation", "tanh"),
    ]
    store = finished_store(tmp_path / "s.sqlite", rows, {1: 0.1, 2: 0.5, 3: 0.3})
    first = RuleAgent().propose(context(store.nodes(), n_iter_block=4, slots=2), slots(4, 1))[0]
    assert first.strategy == "recombine" and first.parent == 2
    assert first.mutation == {"model.activation": "tanh"}


def test_rule_agent_is_a_function_of_its_arguments(tmp_path):
    rows = [node_row(1, strategy="baseline", config=ROOT)]
    store = finished_store(tmp_path / "s.sqlite", rows, {1: 0.5})
    ctx = context(store.nodes(), n_iter_block=12, slots=4)
    assert RuleAgent().propose(ctx, slots(2, 4)) == RuleAgent().propose(ctx, slots(2, 4))
    assert np.random.default_rng([0, 2]).random() == np.random.default_rng([0, 2]).random()
