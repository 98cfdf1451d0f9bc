"""Rewards and UCB on a hand-built tree, and the block statistics that rewrite the rules."""

import pytest
from explore_helpers import finished_store, node_row, spec

from gnnlab.explore.knowledge import BlockStats, Rules, block_stats, rewrite_rules
from gnnlab.explore.tree import metric_reward, node_rewards, ucb_scores

# 1 (0.5) ─┬─ 2 (0.8) ── 4 (0.9)
#          └─ 3 (failed)
TREE = [node_row(1), node_row(2, parent=1), node_row(3, parent=1), node_row(4, parent=2)]
RESULTS = {1: 0.5, 2: 0.8, 3: None, 4: 0.9}


@pytest.fixture
def store(tmp_path):
    store = finished_store(tmp_path / "s.sqlite", TREE, RESULTS)
    yield store
    store.close()


def test_seeds_form_is_reward_plus_c_sqrt_n_over_one_plus_visits(store):
    entries = {e.node: e for e in ucb_scores(spec(ucb_form="seeds", ucb_c=1.414), store.nodes(), 1)}
    bonus = 1.414 * 2.0  # c * sqrt(4 nodes)
    assert entries[1].visits == 4 and entries[2].visits == 2 and entries[4].visits == 1
    assert entries[1].ucb == pytest.approx(0.5 + bonus / 5)
    assert entries[2].ucb == pytest.approx(0.8 + bonus / 3)
    assert entries[4].ucb == pytest.approx(0.9 + bonus / 2)


def test_ucb1_form_is_reward_plus_c_sqrt_log_n_over_visits(store):
    entries = {e.node: e for e in ucb_scores(spec(ucb_form="ucb1", ucb_c=1.414), store.nodes(), 1)}
    assert entries[4].ucb == pytest.approx(0.9 + 1.414 * (1.3862944 / 1) ** 0.5)
    assert entries[1].ucb == pytest.approx(0.5 + 1.414 * (1.3862944 / 4) ** 0.5)


def test_failed_node_is_kept_with_the_failure_reward(store):
    entries = {e.node: e for e in ucb_scores(spec(), store.nodes(), 1)}
    assert entries[3].reward == 0.0  # min(0, worst finite reward 0.5)
    assert [e.node for e in ucb_scores(spec(), store.nodes(), 1)] == [4, 2, 3, 1]


def test_failure_reward_ranks_below_negative_results(tmp_path):
    store = finished_store(tmp_path / "s.sqlite", TREE, {1: -2.0, 2: 0.8, 3: None, 4: 0.9})
    assert node_rewards(spec(), store.nodes())[3] == -2.0


def test_target_goal_rewards_closeness_so_three_does_not_beat_one():
    target = spec(goal={"target": 1.0}, metric="avg_slope_ratio")
    assert metric_reward(target, {"avg_slope_ratio": 1.0}) == 0.0
    assert metric_reward(target, {"avg_slope_ratio": 3.0}) == -2.0
    assert metric_reward(target, {"avg_slope_ratio": 0.5}) == -0.5
    assert metric_reward(spec(goal="minimize", metric="val_loss"), {"val_loss": 0.25}) == -0.25


def test_non_finite_metric_has_no_reward():
    assert metric_reward(spec(), {"rate_constants_R2": float("nan")}) is None
    assert metric_reward(spec(), {"rate_constants_R2": None}) is None


def test_robustness_reruns_average_into_their_node_and_count_as_visits(tmp_path):
    rows = [*TREE, node_row(5, parent=4, robust_of=4, seed=1)]
    store = finished_store(tmp_path / "s.sqlite", rows, {**RESULTS, 5: 0.7})
    entries = {e.node: e for e in ucb_scores(spec(), store.nodes(), 1)}
    assert 5 not in entries
    assert entries[4].reward == pytest.approx(0.8)
    assert entries[4].visits == 2


def test_nodes_of_other_blocks_are_outside_the_tree(tmp_path):
    rows = [*TREE, node_row(5, block=2), node_row(6, block=2, parent=5)]
    store = finished_store(tmp_path / "s.sqlite", rows, {**RESULTS, 5: 0.1, 6: 0.2})
    assert {e.node for e in ucb_scores(spec(), store.nodes(), 2)} == {5, 6}


def test_block_statistics_of_the_tree(store):
    stats = block_stats(spec(), store.nodes(), 1)
    assert stats.n_nodes == 4
    assert stats.best_node == 4 and stats.best_reward == 0.9
    assert stats.improvement_rate == pytest.approx(2 / 3)  # 2 and 4 beat their parents, 3 did not


def test_low_branching_rate_makes_the_rules_explore_more():
    stats = BlockStats(8, 0.1, 0.3, False, 1, 0.5)
    rules, reasons = rewrite_rules(Rules(), stats, slots=4)
    assert rules.ucb_c_scale == 1.5 and "explore more" in reasons[0]


def test_high_branching_rate_makes_the_rules_exploit_more():
    rules, _ = rewrite_rules(Rules(), BlockStats(8, 0.9, 0.3, False, 1, 0.5), slots=4)
    assert rules.ucb_c_scale == pytest.approx(1 / 1.5)


def test_a_stuck_block_switches_strategy_sooner_with_two_key_moves():
    rules, reasons = rewrite_rules(Rules(), BlockStats(8, 0.5, 0.0, True, 1, 0.5), slots=4)
    assert rules.multi_mutation and rules.stuck_after == 4
    assert any("stuck" in r for r in reasons)
