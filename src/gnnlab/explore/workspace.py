"""The agent workspace ``DIR/workspace/``: the only files an LLM agent is shown.

Isolation is a mechanism, not an instruction. The loop *writes* the workspace from an allow-list of names
(:data:`ALLOWED`), from contents it renders itself (the store's nodes, the rendered markdown, the loop's own
tree and progress plots) plus the run figures named in :data:`RUN_PLOTS`, which are drawn without the truth;
nothing else is copied from a run directory or the dataset cache, where ground truth lives
(``ground_truth.npz``, run plots that draw true parameters, metrics comparing to true values). An LLM
agent *reads* only through :func:`read_workspace`, which refuses names off the list, symlinks and paths that
leave the directory. So ground truth cannot reach a prompt unless the loop itself renders it into one of
these files, and :func:`metrics_json` drops the metrics that carry true values (``*_gt_*``).
"""

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WORKSPACE = "workspace"

# name pattern -> what it is; everything else is refused, on write and on read
ALLOWED: dict[str, str] = {
    r"config\.yaml": "the current config: the current block's best node, or its root before any result",
    r"protocol\.md": "the protocol (immutable goal and forbidden actions, rewritable rules)",
    r"memory\.md": "bounded working memory",
    r"analysis\.md": "one entry per finished iteration",
    r"ucb_scores\.txt": "the current block's UCB table",
    r"nodes/iter_\d{3,}/metrics\.json": "a finished node's metrics (ground-truth-valued metrics dropped)",
    r"tree\.png": "the exploration tree (drawn by the loop from the store)",
    r"progress\.png": "the metric over iterations (drawn by the loop from the store)",
    r"nodes/iter_\d{3,}/(loss|kinograph)\.png": "the latest finished nodes' learned-vs-observed figures",
    r"code/gnnlab/[A-Za-z0-9_/]+\.py": "the editable training code (explore.allow_code_edits, block starts)",
}
PLOTS = ("tree.png", "progress.png")
# Run figures the evaluation draws from the model, its history and the observations only, never from the
# truth: training loss, and held-out observed concentrations beside the model's rollout. A figure is added
# here only after checking that its plotting function takes no ground truth; any other run figure (rate
# constants, node functions, embeddings coloured by true types, perturbation effects) stays out.
RUN_PLOTS = ("loss.png", "kinograph.png")


def allowed(name: str) -> bool:
    return any(re.fullmatch(pattern, name) for pattern in ALLOWED)


def metrics_json(metrics: Mapping[str, Any] | None) -> str:
    """A node's metrics as the agent may see them: values compared against ground truth are dropped."""
    shown = {k: v for k, v in (metrics or {}).items() if "_gt_" not in k}
    return json.dumps(shown, indent=2, sort_keys=True) + "\n"


def write_workspace(root: Path, files: Mapping[str, bytes]) -> Path:
    """Replace ``root/workspace`` with exactly ``files`` (name -> bytes); a name off the list is an error.

    Built in a sibling directory and swapped in, so a reader never sees half a workspace and a file
    dropped from ``files`` does not linger.
    """
    refused = sorted(name for name in files if not allowed(name))
    if refused:
        raise ValueError(f"not allowed in the agent workspace: {refused}")
    target = root / WORKSPACE
    staging = root / (WORKSPACE + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    for name, data in files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    staging.mkdir(exist_ok=True)
    old = root / (WORKSPACE + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def read_workspace(workspace: Path, name: str) -> bytes:
    """The bytes of an allowed workspace file; ``PermissionError`` for anything else."""
    if not allowed(name):
        raise PermissionError(f"{name!r} is not an agent workspace file")
    path = workspace / name
    resolved = path.resolve()
    if path.is_symlink() or not resolved.is_relative_to(workspace.resolve()):
        raise PermissionError(f"{name!r} leaves the agent workspace")
    return resolved.read_bytes()


def list_workspace(workspace: Path) -> list[str]:
    """The allowed files present, sorted (the order prompts list them in)."""
    if not workspace.is_dir():
        return []
    names = [p.relative_to(workspace).as_posix() for p in workspace.rglob("*") if p.is_file()]
    return sorted(n for n in names if allowed(n))


__all__ = [
    "ALLOWED",
    "PLOTS",
    "RUN_PLOTS",
    "WORKSPACE",
    "allowed",
    "list_workspace",
    "metrics_json",
    "read_workspace",
    "write_workspace",
]
