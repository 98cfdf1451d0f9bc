"""The explore section is validated like the rest of a config; every proposal is checked before it runs."""

from pathlib import Path

import pytest
from explore_helpers import TINY, spec, write_config

from gnnlab.config import load_config, load_explore, parse_config, parse_explore
from gnnlab.errors import ConfigError
from gnnlab.explore.space import SearchSpace


@pytest.fixture
def space():
    return SearchSpace(spec(per_slot={"training.batch_size": [64, 128]}))


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ({"training.learning_rate_k": "fast"}, "expected a number"),
        ({"training.lbfgs_iterations": 2.5}, "expected an integer"),
        ({"training.loss_normalisation": "per_metabolite"}, "is not one of"),
        ({"training.learning_rate_k": 0.5}, "outside [0.001, 0.1]"),
        ({"training.learning_rate_k": float("nan")}, "not finite"),
        ({"training.learnig_rate_k": 0.01}, "not a declared parameter"),
        ({"simulation.n_frames": 500}, "frozen"),
        ({"training.batch_size": 64}, "fixed per slot"),
        ({}, "changes nothing"),
    ],
)
def test_invalid_mutations_are_rejected_with_their_reason(space, mutation, reason):
    reasons = space.check(mutation)
    assert len(reasons) == 1 and reason in reasons[0]


def test_bool_is_not_a_number(space):
    assert "expected a number" in space.check({"training.lbfgs_iterations": True})[0]


def test_valid_mutation_gives_a_run_config_with_the_slot_values(space):
    base = parse_config({k: v for k, v in TINY.items() if k != "explore"}).model_dump(mode="json")
    config = space.apply(base, {"training.learning_rate_k": 0.05, "model.activation": "tanh"}, slot=1)
    assert config["training"]["learning_rate_k"] == 0.05
    assert config["model"]["activation"] == "tanh"
    assert config["training"]["batch_size"] == 128
    assert base["training"]["batch_size"] == 256  # the parent config is not touched


def test_explore_section_unknown_key_names_the_key(tmp_path):
    path = write_config(tmp_path / "c.yaml", n_iter_blok=3)
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'explore\.n_iter_blok'"):
        load_explore(path)


def test_explore_parameter_with_low_above_high_is_an_error(tmp_path):
    params = {"training.learning_rate_k": {"type": "float", "low": 1.0, "high": 0.1}}
    path = write_config(tmp_path / "c.yaml", parameters=params)
    with pytest.raises(ConfigError, match="low <= high must hold"):
        load_explore(path)


def test_a_key_cannot_be_searched_and_fixed_per_slot():
    with pytest.raises(ConfigError, match="both searched and fixed per slot"):
        parse_explore({**TINY["explore"], "per_slot": {"training.learning_rate_k": [0.01]}})


def test_run_config_ignores_the_explore_section(tmp_path):
    path = write_config(tmp_path / "c.yaml")
    run_config, explore = load_explore(path)
    assert load_config(path) == run_config
    assert explore.n_iter_block == 4
    assert "explore" not in run_config.model_dump()


def test_shipped_exploration_config_is_valid():
    run_config, explore = load_explore(
        Path(__file__).resolve().parents[1] / "configs/explore/metabolism.yaml"
    )
    assert explore.budget.iterations == 24 and explore.slots == 4
    assert run_config.training.lbfgs_iterations == 0  # the documented poor starting point
