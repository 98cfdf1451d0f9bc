"""The import rules of docs/architecture.md, checked: each layer imports only the layers below it."""

import ast
from pathlib import Path

import pytest

import gnnlab

SRC = Path(gnnlab.__file__).parent

# layer -> the gnnlab layers it may import (besides itself and gnnlab.errors / gnnlab._version)
ALLOWED = {
    "config": set(),
    "systems": {"config"},
    "data": {"config", "systems"},
    "models": {"config", "systems"},
    "training": {"config", "systems", "models"},
    "evaluation": {"config", "systems", "data", "models"},
    "pipeline": {"config", "systems", "data", "models", "training", "evaluation"},
    "cli": {"config", "pipeline", "explore"},
    # the loop calls runs through pipeline; a forked run enters through the `gnnlab run` command itself
    "explore": {"config", "pipeline", "cli"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _gnnlab_imports(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [
                f"{node.module}.{alias.name}" for alias in node.names if node.module == "gnnlab"
            ]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "gnnlab" and len(parts) > 1:
                layers.add(parts[1])
    return layers - {"errors", "_version"}


MODULES = sorted(p for p in SRC.rglob("*.py") if _layer(p) in ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_module_imports_only_lower_layers(path):
    layer = _layer(path)
    forbidden = _gnnlab_imports(path) - ALLOWED[layer] - {layer}
    assert not forbidden, f"{layer} must not import {sorted(forbidden)}"


def test_every_module_belongs_to_a_layer():
    unplaced = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if _layer(p) not in ALLOWED]
    assert sorted(unplaced) == ["__init__.py", "_version.py", "errors.py"]
