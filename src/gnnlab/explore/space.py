"""The typed search space: dotted keys into a config, their declared types and ranges, and the checks every
proposal passes before it becomes a run.

A proposal is never trusted, whoever made it (the rule agent, TPE, a replayed store, an LLM): it may change
only declared, non-frozen, non-per-slot keys, to values of the declared type inside the declared range, and
the resulting config must validate as a run config.
"""

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gnnlab.config import ExploreConfig, parse_config
from gnnlab.config.explore import Parameter
from gnnlab.errors import ConfigError

Mutation = dict[str, Any]


def get_value(config: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of a config mapping (``KeyError`` naming the key if absent)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def set_values(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted key of ``values`` set."""
    out = copy.deepcopy(dict(config))
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _check_value(key: str, param: Parameter, value: Any) -> str | None:
    """Why ``value`` is not a valid setting of ``param`` (None if it is)."""
    if param.type == "bool":
        return None if isinstance(value, bool) else f"{key}: expected a bool, got {value!r}"
    if param.type == "categorical":
        if any(value == c and type(value) is type(c) for c in param.choices or ()):
            return None
        return f"{key}: {value!r} is not one of {list(param.choices or ())}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{key}: expected a number, got {value!r}"
    if param.type == "int" and not (isinstance(value, int) or float(value).is_integer()):
        return f"{key}: expected an integer, got {value!r}"
    if not math.isfinite(value):
        return f"{key}: {value!r} is not finite"
    assert param.low is not None and param.high is not None
    if not param.low <= value <= param.high:
        return f"{key}: {value!r} is outside [{param.low:g}, {param.high:g}]"
    return None


def normalise(param: Parameter, value: Any) -> Any:
    """The canonical Python value of a valid setting (ints as int, floats as float)."""
    if param.type == "int":
        return int(value)
    if param.type == "float":
        return float(value)
    return value


class SearchSpace:
    """The declared parameters of an ``explore`` section, with validation, sampling and local steps."""

    def __init__(self, spec: ExploreConfig):
        self.spec = spec
        self.parameters: dict[str, Parameter] = dict(spec.parameters)
        self.searchable = [k for k, p in self.parameters.items() if not p.frozen]

    def check(self, mutation: Mapping[str, Any]) -> list[str]:
        """Every reason ``mutation`` is invalid (empty when it is valid)."""
        if not isinstance(mutation, Mapping):
            return [f"a mutation must be a mapping of dotted keys to values, got {type(mutation).__name__}"]
        if not mutation:
            return ["the mutation changes nothing"]
        reasons = []
        for key, value in mutation.items():
            if key in self.spec.per_slot:
                reasons.append(f"{key}: fixed per slot, cannot be mutated")
            elif key not in self.parameters:
                reasons.append(f"{key}: not a declared parameter; declared: {', '.join(self.searchable)}")
            elif self.parameters[key].frozen:
                reasons.append(f"{key}: frozen, cannot be mutated")
            elif (reason := _check_value(key, self.parameters[key], value)) is not None:
                reasons.append(reason)
        return reasons

    def apply(
        self, base: Mapping[str, Any], mutation: Mapping[str, Any], slot: int, *, allow_empty: bool = False
    ) -> dict[str, Any]:
        """The run config (as a mapping) of ``base`` with ``mutation`` and the slot's fixed keys applied.

        ``allow_empty`` admits the empty mutation (a baseline run of ``base`` itself). Raises
        ``ConfigError`` if the mutation is invalid or the result is not a valid run config.
        """
        reasons = [] if allow_empty and mutation == {} else self.check(mutation)
        if reasons:
            raise ConfigError("; ".join(reasons))
        values = {k: normalise(self.parameters[k], v) for k, v in mutation.items()}
        values.update(self.slot_values(slot))
        config = set_values(base, values)
        return parse_config(config, "proposal").model_dump(mode="json")

    def slot_values(self, slot: int) -> dict[str, Any]:
        return {key: values[slot % len(values)] for key, values in self.spec.per_slot.items()}

    def sample(self, key: str, rng: np.random.Generator) -> Any:
        """A value drawn uniformly (log-uniformly on a log scale) from the whole range of ``key``."""
        param = self.parameters[key]
        if param.type == "bool":
            return bool(rng.integers(2))
        if param.type == "categorical":
            choices = param.choices or ()
            return choices[int(rng.integers(len(choices)))]
        assert param.low is not None and param.high is not None
        if param.log:
            value = float(np.exp(rng.uniform(np.log(param.low), np.log(param.high))))
        else:
            value = float(rng.uniform(param.low, param.high))
        return int(round(value)) if param.type == "int" else value

    def step(self, key: str, value: Any, direction: int) -> Any:
        """A local move of a numeric ``value`` up (+1) or down (-1): a factor of 2 on a log scale, an eighth
        of the range on a linear one; clipped to the range. Returns ``value`` itself at the bound."""
        param = self.parameters[key]
        assert param.low is not None and param.high is not None
        if param.log:
            moved = float(value) * (2.0 if direction > 0 else 0.5)
        else:
            moved = float(value) + direction * (param.high - param.low) / 8.0
        moved = min(max(moved, param.low), param.high)
        return int(round(moved)) if param.type == "int" else moved

    def extreme(self, key: str, value: Any) -> Any:
        """The end of the range farther from ``value`` (in the parameter's scale): a failure probe."""
        param = self.parameters[key]
        assert param.low is not None and param.high is not None
        scale = np.log if param.log else (lambda x: x)
        far = param.low if scale(value) - scale(param.low) > scale(param.high) - scale(value) else param.high
        return int(far) if param.type == "int" else float(far)


__all__ = ["Mutation", "SearchSpace", "get_value", "normalise", "set_values"]
