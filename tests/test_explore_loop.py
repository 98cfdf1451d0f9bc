"""The loop end to end: rounds, blocks, validation fallback, failures, budgets, replay and status.

Most tests score runs with an in-process function (the loop's logic, exactly and fast); the real-run tests
at the end train tiny systems through the local executor.
"""

import json

import pytest
from explore_helpers import InProcessExecutor, write_config

from gnnlab.errors import ConfigError
from gnnlab.explore import Agent, Proposal, Store, explore
from gnnlab.explore.agents import AGENTS
from gnnlab.explore.store import STORE_FILE


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def run_loop(tmp_path, cache, name="ex", executor=None, **kwargs):
    config = write_config(tmp_path / f"{name}.yaml", **kwargs.pop("explore", {}))
    executor = executor or InProcessExecutor(2)
    summary = explore(config, tmp_path / name, executor=executor, cache_dir=cache, progress=False, **kwargs)
    store = Store(tmp_path / name / STORE_FILE)
    nodes = store.nodes()
    blocks = store.blocks()
    events = store.events()
    store.close()
    return summary, nodes, blocks, events, executor


def test_rounds_fill_the_slots_and_number_iterations_without_gaps(tmp_path, cache):
    summary, nodes, _, _, executor = run_loop(tmp_path, cache, iterations=6)
    assert [n.id for n in nodes] == [1, 2, 3, 4, 5, 6]
    assert [n.slot for n in nodes] == [0, 1, 0, 1, 0, 1]
    assert all(n.status == "done" for n in nodes)
    assert summary["iterations_done"] == 6
    assert sorted(s.node for s in executor.submitted) == [1, 2, 3, 4, 5, 6]


def test_blocks_end_with_a_summary_a_rule_rewrite_and_a_fresh_tree(tmp_path, cache):
    _, nodes, blocks, _, _ = run_loop(tmp_path, cache, iterations=8)
    assert [n.block for n in nodes] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [b.block for b in blocks] == [1, 2] and all(b.ended is not None for b in blocks)
    assert blocks[0].summary["best_node"] in {1, 2, 3, 4}
    assert all(n.parent is None or n.parent >= 5 for n in nodes if n.block == 2)
    assert (tmp_path / "ex" / "protocol" / "block_002.md").is_file()
    assert (tmp_path / "ex" / "memory" / "block_001.md").is_file()
    best_of_block_1 = max((n for n in nodes if n.block == 1), key=lambda n: n.metrics["rate_constants_R2"])
    assert blocks[1].root_config == best_of_block_1.config


def test_iteration_budget_is_enforced_and_resume_extends_it(tmp_path, cache):
    summary, nodes, _, _, _ = run_loop(tmp_path, cache, iterations=3)
    assert len(nodes) == 3 and summary["iterations_budget"] == 3
    resumed = explore(
        None,
        tmp_path / "ex",
        resume=True,
        iterations=5,
        executor=InProcessExecutor(2),
        cache_dir=cache,
        progress=False,
    )
    assert resumed["iterations_done"] == 5


def test_an_existing_exploration_is_not_overwritten(tmp_path, cache):
    run_loop(tmp_path, cache, iterations=2)
    with pytest.raises(ConfigError, match="pass --resume"):
        run_loop(tmp_path, cache, iterations=2)


class Reckless(Agent):
    """Proposes a frozen key, an out-of-range value and an unknown key."""

    name = "reckless"

    def propose(self, context, slots):
        bad = [{"simulation.n_frames": 500}, {"training.learning_rate_k": 5.0}, {"training.nope": 1}]
        return [Proposal(bad[(s.iteration - 1) % 3], None, "reckless") for s in slots]


def test_invalid_proposals_are_recorded_and_the_rule_agent_fills_their_slot(tmp_path, cache, monkeypatch):
    monkeypatch.setitem(AGENTS, "rule", Reckless)
    summary, nodes, _, events, _ = run_loop(tmp_path, cache, iterations=3)
    rejected = [e for e in events if e["kind"] == "rejected"]
    assert [e["iteration"] for e in rejected] == [1, 2, 3]
    assert "frozen" in rejected[0]["detail"]["reason"]
    assert "outside" in rejected[1]["detail"]["reason"]
    assert "not a declared parameter" in rejected[2]["detail"]["reason"]
    assert all(n.agent.startswith("rule (after rejecting reckless)") for n in nodes)
    assert summary["rejected_proposals"] == 3


def test_a_failed_run_becomes_a_failed_node_and_the_loop_goes_on(tmp_path, cache):
    summary, nodes, _, _, _ = run_loop(tmp_path, cache, iterations=4, executor=InProcessExecutor(2, fail={2}))
    assert [n.status for n in nodes] == ["done", "failed", "done", "done"]
    assert summary["failed"] == [{"node": 2, "reason": "crashed (exit 1): planted"}]


@pytest.mark.parametrize("agent", ["rule", "random", "optuna"])
def test_each_agent_is_deterministic_for_a_seed(tmp_path, cache, agent):
    _, first, _, _, _ = run_loop(tmp_path, cache, "a", iterations=6, agent=agent, seed=3)
    _, second, _, _, _ = run_loop(tmp_path, cache, "b", iterations=6, agent=agent, seed=3)
    assert [(n.parent, n.mutation, n.config) for n in first] == [
        (n.parent, n.mutation, n.config) for n in second
    ]


def test_replay_reproduces_a_recorded_tree(tmp_path, cache):
    _, recorded, recorded_blocks, _, _ = run_loop(tmp_path, cache, "source", iterations=8, seed=5)
    replayed = explore(
        None,
        tmp_path / "copy",
        agent="replay",
        replay_from=tmp_path / "source",
        executor=InProcessExecutor(2),
        cache_dir=cache,
        progress=False,
    )
    store = Store(tmp_path / "copy" / STORE_FILE)
    nodes, blocks = store.nodes(), store.blocks()
    store.close()

    def fields(n):
        return (n.id, n.block, n.slot, n.parent, n.robust_of, n.config, n.mutation, n.strategy, n.metrics)

    assert [fields(n) for n in nodes] == [fields(n) for n in recorded]
    assert [b.rules for b in blocks] == [b.rules for b in recorded_blocks]
    assert replayed["iterations_done"] == 8


def test_status_json_has_the_documented_keys(tmp_path, cache, capsys):
    from gnnlab.cli import main

    _, nodes, _, _, _ = run_loop(tmp_path, cache, iterations=4)
    assert main(["explore", "status", str(tmp_path / "ex"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["iterations_done"] == 4 and summary["failed"] == []
    assert set(summary["best"]) >= {"node", "config", "metrics"}
    best = max(nodes, key=lambda n: n.metrics["rate_constants_R2"])
    assert summary["best"]["node"] == best.id and summary["best"]["config"] == best.config


def test_status_of_a_missing_directory_is_one_line_error(tmp_path, capsys):
    from gnnlab.cli import main

    assert main(["explore", "status", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_converged_block_moves_to_the_next_regime(tmp_path, cache):
    regimes = [{"name": "longer", "set": {"simulation.n_frames": 500}}]
    flat = InProcessExecutor(2, metric=lambda config: 0.5)  # nothing ever improves: block 1 converges
    _, nodes, blocks, _, _ = run_loop(
        tmp_path, cache, iterations=6, executor=flat, explore={"regimes": regimes}
    )
    assert blocks[0].summary["converged"] and blocks[0].summary["next_regime"] == "longer"
    assert blocks[1].regime == "longer"
    assert {n.config["simulation"]["n_frames"] for n in nodes if n.block == 2} == {500}
    assert {n.config["simulation"]["n_frames"] for n in nodes if n.block == 1} == {400}


def test_an_unknown_regime_key_is_a_config_error(tmp_path, cache):
    regimes = [{"name": "bad", "set": {"simulation.n_frams": 500}}]
    with pytest.raises(ConfigError, match="n_frams"):
        run_loop(tmp_path, cache, iterations=2, explore={"regimes": regimes})
