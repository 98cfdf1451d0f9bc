"""The config layer: defaults, strict keys, one-line errors that say where, overrides, freezing, hashing."""

from pathlib import Path

import pydantic
import pytest
import yaml

from gnnlab.config import (
    ConfigError,
    MetabolismConfig,
    MetabolismTraining,
    config_to_dict,
    dump_config,
    load_config,
    simulation_hash,
)

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "metabolism.yaml"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(path: Path | None, overrides: list[str] | None = None) -> str:
    """The message of the ConfigError that loading must raise; it must be one line."""
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, overrides or [])
    text = str(excinfo.value)
    assert "\n" not in text, f"error message is not one line: {text!r}"
    return text


# --- defaults -----------------------------------------------------------------------------------------


def test_defaults_are_the_oscillatory_benchmark():
    config = load_config(None)
    assert isinstance(config, MetabolismConfig)
    assert config.system == "metabolism"
    sim = config.simulation
    assert (sim.n_metabolites, sim.n_metabolite_types, sim.n_reactions) == (100, 2, 256)
    assert (sim.cycle_fraction, sim.cycle_length) == (1.0, 3)
    assert sim.homeostatic_lambda_per_type == (0.001, 0.002)
    assert sim.homeostatic_baseline_per_type == (4.0, 6.0)


def test_an_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == load_config(None)


def test_the_shipped_config_equals_the_defaults():
    if not SHIPPED_CONFIG.is_file():
        pytest.skip(f"{SHIPPED_CONFIG} not present")
    assert load_config(SHIPPED_CONFIG) == load_config(None)


def test_a_dumped_config_loads_back_unchanged(tmp_path):
    config = load_config(None, ["training.seed=9", "simulation.n_frames=100"])
    assert load_config(write(tmp_path, dump_config(config))) == config


# --- errors -------------------------------------------------------------------------------------------


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_unknown_key_error_names_the_key_the_file_and_the_valid_keys(tmp_path):
    path = write(tmp_path, "training:\n  sed: 3\n")
    text = config_error(path)
    assert "training.sed" in text
    assert str(path) in text
    for valid in ("seed", "n_epochs", "batch_size", "learning_rate_k"):
        assert valid in text


def test_unknown_section_error_lists_the_sections(tmp_path):
    path = write(tmp_path, "simulaton:\n  seed: 3\n")
    text = config_error(path)
    assert "'simulaton'" in text and str(path) in text
    assert "model, simulation, system, training" in text


def test_invalid_value_error_names_the_key_and_the_value(tmp_path):
    path = write(tmp_path, "training:\n  n_epochs: 0\n")
    text = config_error(path)
    assert "training.n_epochs" in text and str(path) in text
    assert "got 0" in text


def test_wrong_type_error_names_the_key(tmp_path):
    path = write(tmp_path, "model:\n  activation: relu\n")
    assert "model.activation" in config_error(path)


def test_unregistered_system_is_rejected(tmp_path):
    text = config_error(write(tmp_path, "system: weather\n"))
    assert "'weather'" in text and "metabolism" in text


def test_missing_file_error_names_the_path(tmp_path):
    path = tmp_path / "absent.yaml"
    text = config_error(path)
    assert str(path) in text and "not found" in text


def test_invalid_yaml_error_gives_the_line(tmp_path):
    path = write(tmp_path, "simulation:\n  n_metabolites: 10\n  seed: a: b\n")
    text = config_error(path)
    assert str(path) in text and "invalid YAML" in text
    assert "line 3" in text


def test_a_file_that_is_not_a_mapping_is_rejected(tmp_path):
    path = write(tmp_path, "- 1\n- 2\n")
    text = config_error(path)
    assert str(path) in text and "list" in text


def test_homeostatic_lists_must_have_one_entry_per_type():
    text = config_error(None, ["simulation.homeostatic_lambda_per_type=[0.1, 0.2, 0.3]"])
    assert "homeostatic_lambda_per_type" in text and "n_metabolite_types = 2" in text


def test_changing_the_number_of_types_requires_matching_lists():
    with pytest.raises(ConfigError):
        load_config(None, ["simulation.n_metabolite_types=3"])
    config = load_config(
        None,
        [
            "simulation.n_metabolite_types=3",
            "simulation.homeostatic_lambda_per_type=[0.1, 0.2, 0.3]",
            "simulation.homeostatic_baseline_per_type=[1, 2, 3]",
        ],
    )
    assert config.simulation.homeostatic_baseline_per_type == (1.0, 2.0, 3.0)


@pytest.mark.parametrize(
    "override",
    [
        "simulation.log_k_min=0.5",  # above log_k_max = -1
        "simulation.n_validation_runs=2",  # not below n_runs = 2
        "simulation.cycle_fraction=1.5",
        "simulation.concentration_min=10",  # above concentration_max = 9
    ],
)
def test_inconsistent_simulation_settings_are_rejected(override):
    key = override.split("=")[0].split(".")[1]
    assert key in config_error(None, [override])


# --- overrides ----------------------------------------------------------------------------------------


def test_overrides_apply_on_top_of_a_file(tmp_path):
    path = write(tmp_path, "training:\n  seed: 1\n  n_epochs: 4\n")
    config = load_config(path, ["training.seed=3"])
    assert config.training.seed == 3
    assert config.training.n_epochs == 4  # the file's other keys survive


def test_override_values_are_parsed_as_yaml():
    config = load_config(
        None,
        [
            "training.seed=3",
            "training.grad_clip_norm=0.5",
            "training.n_threads=null",
            "training.lr_schedule=constant",
            "simulation.homeostatic_baseline_per_type=[1, 2.5]",
        ],
    )
    assert config.training.seed == 3 and isinstance(config.training.seed, int)
    assert config.training.grad_clip_norm == 0.5
    assert config.training.n_threads is None
    assert config.training.lr_schedule == "constant"
    assert config.simulation.homeostatic_baseline_per_type == (1.0, 2.5)


def test_later_overrides_win():
    assert load_config(None, ["training.seed=3", "training.seed=4"]).training.seed == 4


def test_override_without_equals_sign_is_a_one_line_error():
    text = config_error(None, ["training.seed"])
    assert "training.seed" in text and "section.key=value" in text


def test_override_with_invalid_yaml_value_is_rejected():
    assert "not valid YAML" in config_error(None, ["training.seed=[1"])


def test_override_of_an_unknown_key_is_rejected_like_a_file_key():
    text = config_error(None, ["training.sed=3"])
    assert "training.sed" in text and "seed" in text


def test_override_into_a_scalar_is_rejected(tmp_path):
    path = write(tmp_path, "simulation:\n  n_metabolites: 10\n")
    assert "'n_metabolites' is not a section" in config_error(path, ["simulation.n_metabolites.foo=1"])


# --- immutability and hashing -------------------------------------------------------------------------


def test_config_sections_are_frozen():
    config = load_config(None)
    with pytest.raises(pydantic.ValidationError):
        config.training.seed = 3  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.simulation = config.simulation  # type: ignore[misc]
    assert config.training.seed == 0


def test_sections_forbid_unknown_keys_when_built_directly():
    with pytest.raises(pydantic.ValidationError):
        MetabolismTraining(sed=3)


def test_simulation_hash_changes_with_the_simulation_section():
    base = load_config(None)
    assert simulation_hash(load_config(None, ["simulation.seed=43"])) != simulation_hash(base)
    assert simulation_hash(load_config(None, ["simulation.n_frames=100"])) != simulation_hash(base)


def test_simulation_hash_ignores_the_model_and_training_sections():
    base = load_config(None)
    other = load_config(None, ["training.seed=3", "training.batch_size=64", "model.embedding_dim=4"])
    assert simulation_hash(other) == simulation_hash(base)


def test_simulation_hash_is_twelve_hex_digits_and_stable():
    digest = simulation_hash(load_config(None))
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert simulation_hash(load_config(None)) == digest


def test_dump_config_writes_every_section_in_order():
    dumped = dump_config(load_config(None))
    assert list(yaml.safe_load(dumped)) == ["system", "simulation", "model", "training"]
    assert yaml.safe_load(dumped) == config_to_dict(load_config(None))


def test_list_valued_keys_cannot_be_mutated_after_loading():
    config = load_config(None)
    with pytest.raises(AttributeError):
        config.simulation.homeostatic_lambda_per_type.append(5.0)  # type: ignore[attr-defined]


def test_a_non_text_system_name_is_a_one_line_config_error(tmp_path):
    assert "key 'system'" in config_error(write(tmp_path, "system: [metabolism]\n"))
