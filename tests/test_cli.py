"""The ``gnnlab`` command, run in-process: bad input is exit code 2 and one line on stderr, never a traceback.

Nothing here trains a model: every ``run`` below fails while resolving its config, before any simulation.
"""

import re

import pytest
import yaml

from gnnlab.cli import main
from gnnlab.config import config_to_dict, load_config


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n"), f"not one line: {captured.err!r}"
    assert captured.err.startswith("gnnlab: error: ")
    assert "Traceback" not in captured.err
    return captured.err


def test_config_prints_the_resolved_config_as_yaml(capsys):
    assert main(["config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == config_to_dict(load_config(None))


def test_config_applies_set_overrides(capsys):
    assert main(["config", "--set", "training.seed=7", "--set", "simulation.n_frames=50"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["training"]["seed"] == 7
    assert printed["simulation"]["n_frames"] == 50


def test_config_reads_a_file(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  batch_size: 64\n")
    assert main(["config", str(path)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["training"]["batch_size"] == 64


def test_run_with_a_missing_config_file_exits_2_naming_the_file(tmp_path, capsys):
    path = tmp_path / "missing.yaml"
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert str(path) in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_run_with_an_unknown_key_exits_2_naming_the_key_and_the_file(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text("training:\n  learning_rate: 0.1\n")
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert "training.learning_rate" in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_run_with_an_invalid_value_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  batch_size: -5\n")
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert "training.batch_size" in err and str(path) in err


def test_malformed_set_exits_2(tmp_path, capsys):
    assert main(["config", "--set", "training.seed"]) == 2
    assert "training.seed" in one_line_error(capsys)


def test_simulate_with_an_invalid_yaml_file_exits_2(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("simulation: [1\n")
    assert main(["simulate", str(path), "--cache", str(tmp_path / "cache")]) == 2
    assert str(path) in one_line_error(capsys)
    assert not (tmp_path / "cache").exists()


def test_evaluate_on_an_empty_directory_exits_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--cache", str(tmp_path / "cache")]) == 2
    err = one_line_error(capsys)
    assert str(tmp_path) in err and "not a finished run" in err


def test_help_exits_0_and_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "simulate", "evaluate", "config"):
        assert re.search(rf"^ +{command} +\w", out, re.MULTILINE), f"{command!r} is not listed"


def test_a_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2
    assert "usage: gnnlab" in capsys.readouterr().err
