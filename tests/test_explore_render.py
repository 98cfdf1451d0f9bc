"""The rendered protocol files are a deterministic function of the store (golden text)."""

from explore_helpers import finished_store, node_row, spec

from gnnlab.explore.knowledge import Rules
from gnnlab.explore.render import analysis_md, check_protocol, memory_md, protocol_md, ucb_txt
from gnnlab.explore.tree import ucb_scores

CONFIG = {
    "training": {"learning_rate_k": 0.02, "lbfgs_iterations": 0, "loss_normalisation": "none", "seed": 0},
    "model": {"activation": "silu"},
    "simulation": {"n_frames": 400, "seed": 42},
}


def config(**training):
    return {**CONFIG, "training": {**CONFIG["training"], **training}}


ROWS = [
    node_row(1, config=config(), strategy="baseline"),
    node_row(2, slot=1, config=config(learning_rate_k=0.04), mutation={"training.learning_rate_k": 0.04}),
    node_row(
        3,
        parent=2,
        config=config(learning_rate_k=0.04, lbfgs_iterations=10),
        mutation={"training.lbfgs_iterations": 10},
    ),
    node_row(
        4,
        slot=1,
        parent=2,
        config=config(learning_rate_k=0.04, loss_normalisation="per_node"),
        mutation={"training.loss_normalisation": "per_node"},
    ),
]
RESULTS = {1: 0.25, 2: 0.5, 3: -1.5e-3, 4: None}

# by hand: N = 4 nodes, c·√N = 2.828; failure reward = min(0, -0.0015); V(2) = 3, others 1
EXPECTED_UCB = """\
Node 1: UCB=1.664, parent=root, visits=1, reward=0.25, rate_constants_R2=0.25, Mutation=none
Node 3: UCB=1.412, parent=2, visits=1, reward=-0.0015, rate_constants_R2=-0.0015, Mutation=training.lbfgs_iterations=10
Node 4: UCB=1.412, parent=2, visits=1, reward=-0.0015, rate_constants_R2=None, Mutation=training.loss_normalisation=per_node
Node 2: UCB=1.207, parent=root, visits=3, reward=0.5, rate_constants_R2=0.5, Mutation=training.learning_rate_k=0.04
"""

EXPECTED_ITER_3 = """\
## Iter 3: partial
Node: id=3, parent=2
Mode/Strategy: exploit (slot 0, agent rule)
Config: training.learning_rate_k=0.04, training.lbfgs_iterations=10, training.loss_normalisation=none, model.activation=silu, simulation.n_frames=400
Metrics: rate_constants_R2=-0.0015
Mutation: training.lbfgs_iterations: 0 -> 10
Rationale: none given
Observation: did not improve on its reference
Next: no children yet
"""


def test_ucb_scores_file_from_a_known_store(tmp_path):
    store = finished_store(tmp_path / "s.sqlite", ROWS, RESULTS)
    s = spec()
    text = ucb_txt(s, ucb_scores(s, store.nodes(), 1), store.nodes())
    assert text == EXPECTED_UCB


def test_analysis_entry_from_a_known_store(tmp_path):
    store = finished_store(tmp_path / "s.sqlite", ROWS, RESULTS)
    text = analysis_md(spec(), store.nodes(), [], CONFIG)
    assert EXPECTED_ITER_3 in text
    assert "## Iter 4: failed" in text and "Observation: failed: crashed (exit 1): boom" in text
    assert "## Iter 2: converged" in text  # the best so far
    assert text == analysis_md(spec(), store.nodes(), [], CONFIG)


def test_small_numbers_are_never_truncated_into_other_numbers(tmp_path):
    rows = [node_row(1, config=config(), strategy="baseline")]
    store = finished_store(tmp_path / "s.sqlite", rows, {1: 2.6e-7})
    assert "rate_constants_R2=2.6e-07" in analysis_md(spec(), store.nodes(), [], CONFIG)


def test_memory_lists_principles_with_their_iterations(tmp_path):
    rows = [
        node_row(1, config=config(), strategy="baseline"),
        node_row(2, parent=1, config=config(lbfgs_iterations=10), mutation={"training.lbfgs_iterations": 10}),
        node_row(3, parent=2, config=config(lbfgs_iterations=20), mutation={"training.lbfgs_iterations": 20}),
    ]
    store = finished_store(tmp_path / "s.sqlite", rows, {1: 0.1, 2: 0.2, 3: 0.4})
    text = memory_md(spec(), store.nodes(), [], 1)
    assert (
        "- training.lbfgs_iterations up improves rate_constants_R2 (mean change +0.15; iterations 2, 3)"
        in text
    )
    assert "best node 3" in text


def test_a_protocol_rewrite_cannot_touch_the_immutable_part():
    s = spec()
    rewritten = protocol_md(s, Rules(ucb_c_scale=2.0))
    check_protocol(s, rewritten)
    tampered = rewritten.replace("Training never reads ground truth", "Training may read ground truth")
    try:
        check_protocol(s, tampered)
    except ValueError as exc:
        assert "immutable part changed" in str(exc)
    else:
        raise AssertionError("a tampered protocol was accepted")
