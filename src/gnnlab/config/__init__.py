"""Configuration: the only place YAML is parsed and checked.

A config has a ``system`` name and the sections ``simulation``, ``model`` and ``training``. Every section is
a frozen pydantic model that forbids unknown keys; downstream code trusts what it receives. A file may also
hold an ``explore`` section (the exploration loop's): it is validated too, then split off, so a run config
never carries it.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gnnlab.config._base import Section, TrainingBase
from gnnlab.config.explore import ExploreConfig
from gnnlab.config.flyvis import FlyVisConfig, FlyVisModelConfig, FlyVisSimulation, FlyVisTraining
from gnnlab.config.metabolism import (
    MetabolismConfig,
    MetabolismModel,
    MetabolismSimulation,
    MetabolismTraining,
)
from gnnlab.config.perturbation import (
    PerturbationConfig,
    PerturbationModel,
    PerturbationSimulation,
    PerturbationTraining,
)
from gnnlab.config.signal import SignalConfig, SignalModelConfig, SignalSimulation, SignalTraining
from gnnlab.errors import ConfigError

Config = MetabolismConfig | PerturbationConfig | SignalConfig | FlyVisConfig
CONFIG_TYPES: dict[str, type[Config]] = {
    "metabolism": MetabolismConfig,
    "perturbation": PerturbationConfig,
    "signal": SignalConfig,
    "flyvis": FlyVisConfig,
}


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the section at ``loc`` (for 'valid keys' hints)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _describe(error: dict[str, Any], root: type[BaseModel], prefix: str = "") -> str:
    key = prefix + ".".join(str(p) for p in error["loc"]) or "<top level>"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}; valid keys here: {', '.join(_valid_keys(root, error['loc']))}"
    message = error["msg"].removeprefix("Value error, ")
    shown = repr(error.get("input"))
    return f"key {key!r}: {message}" + (f" (got {shown})" if len(shown) <= 60 else "")


def parse_explore(data: Any, source: str = "<config>") -> ExploreConfig:
    """Validate the ``explore`` section of a config file."""
    try:
        return ExploreConfig.model_validate({} if data is None else data)
    except ValidationError as exc:
        messages = "; ".join(_describe(e, ExploreConfig, "explore.") for e in exc.errors())
        raise ConfigError(f"{source}: {messages}") from None


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate a mapping as a config; ``source`` names where it came from in error messages.

    An ``explore`` section is checked and dropped: it describes a search over runs, not a run.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    if "explore" in data:
        parse_explore(data["explore"], source)
        data = {k: v for k, v in data.items() if k != "explore"}
    system = data.get("system", "metabolism")
    if not isinstance(system, str) or system not in CONFIG_TYPES:
        raise ConfigError(
            f"{source}: key 'system' = {system!r} is not registered; valid: {', '.join(CONFIG_TYPES)}"
        )
    root = CONFIG_TYPES[system]
    try:
        return root.model_validate(data)
    except ValidationError as exc:
        messages = "; ".join(_describe(e, root) for e in exc.errors())
        raise ConfigError(f"{source}: {messages}") from None


def apply_overrides(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str
) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a config mapping, returning a copy."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
        *parents, leaf = path.strip().split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section ({source})")
        node[leaf] = value
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or the built-in defaults when ``path`` is None) and apply ``--set`` overrides."""
    source = "<defaults>" if path is None else str(path)
    return parse_config(read_config_data(path, overrides), source)


def read_config_data(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML config file with ``--set`` overrides applied, not yet validated."""
    source = "<defaults>" if path is None else str(path)
    data: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    if overrides:
        data = apply_overrides(data, overrides, source)
    return data


def load_explore(
    path: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[Config, ExploreConfig]:
    """The run config and the ``explore`` section of one YAML file (``--set explore.key=v`` works too)."""
    data = read_config_data(path, overrides)
    explore = parse_explore(data.get("explore"), str(path))
    return parse_config(data, str(path)), explore


def config_to_dict(config: Config) -> dict[str, Any]:
    """The full resolved config as plain data (every default written out)."""
    return config.model_dump(mode="json")


def dump_config(config: Config) -> str:
    """The resolved config as YAML, in section order."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def simulation_hash(config: Config) -> str:
    """Hash of what determines a dataset: the system and its simulation section (12 hex digits)."""
    payload = json.dumps(
        {"system": config.system, "simulation": config.simulation.model_dump(mode="json")}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


__all__ = [
    "CONFIG_TYPES",
    "Config",
    "ConfigError",
    "ExploreConfig",
    "FlyVisConfig",
    "FlyVisModelConfig",
    "FlyVisSimulation",
    "FlyVisTraining",
    "MetabolismConfig",
    "MetabolismModel",
    "MetabolismSimulation",
    "MetabolismTraining",
    "PerturbationConfig",
    "PerturbationModel",
    "PerturbationSimulation",
    "PerturbationTraining",
    "Section",
    "SignalConfig",
    "SignalModelConfig",
    "SignalSimulation",
    "SignalTraining",
    "TrainingBase",
    "apply_overrides",
    "config_to_dict",
    "dump_config",
    "load_config",
    "load_explore",
    "parse_config",
    "parse_explore",
    "read_config_data",
    "simulation_hash",
]
