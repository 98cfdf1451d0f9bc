"""Shared pieces of the exploration tests: a tiny explore config, an in-process executor, store builders."""

import json
from pathlib import Path
from typing import Any

import yaml

from gnnlab.config import ExploreConfig, parse_explore
from gnnlab.explore.executor import Executor, RunResult, RunSpec
from gnnlab.explore.store import Store

TINY = {
    "system": "metabolism",
    "simulation": {"n_metabolites": 20, "n_reactions": 30, "n_frames": 400, "n_runs": 2},
    "training": {"data_augmentation_loop": 5, "lbfgs_iterations": 5, "n_threads": 1},
    "explore": {
        "metric": "rate_constants_R2",
        "parameters": {
            "training.learning_rate_k": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "training.lbfgs_iterations": {"type": "int", "low": 0, "high": 20},
            "training.loss_normalisation": {"type": "categorical", "choices": ["per_node", "none"]},
            "model.activation": {"type": "categorical", "choices": ["silu", "tanh"]},
            "simulation.n_frames": {"type": "int", "low": 100, "high": 1000, "frozen": True},
        },
        "n_iter_block": 4,
        "slots": 2,
        "budget": {"iterations": 4},
        "plots": False,
    },
}


def write_config(path: Path, **explore: Any) -> Path:
    data = json.loads(json.dumps(TINY))
    data["explore"].update(explore)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def spec(**explore: Any) -> ExploreConfig:
    return parse_explore({**TINY["explore"], **explore})


def synthetic_metric(config: dict[str, Any]) -> float:
    """A smooth made-up landscape over the tiny space, best at lr_k = 10^-1.5, per_node, tanh."""
    import math

    training, model = config["training"], config["model"]
    value = 1.0 - abs(math.log10(training["learning_rate_k"]) + 1.5)
    value -= 0.3 * (training["loss_normalisation"] == "none") + 0.05 * (model["activation"] == "silu")
    return value + 0.001 * training["lbfgs_iterations"]


class InProcessExecutor(Executor):
    """Scores a run config with a function instead of training: the loop's logic, fast and exact."""

    def __init__(self, slots: int, metric=synthetic_metric, fail: set[int] = frozenset()):
        self.slots, self.metric, self.fail = slots, metric, set(fail)
        self.submitted: list[RunSpec] = []
        self._queue: list[RunSpec] = []

    def submit(self, spec: RunSpec) -> None:
        self.submitted.append(spec)
        self._queue.append(spec)

    def running(self) -> list[int]:
        return [s.node for s in self._queue]

    def wait(self, timeout: float | None = None) -> list[RunResult]:
        results = []
        for spec in self._queue:
            if spec.node in self.fail:
                results.append(RunResult(spec.node, "failed", None, "crashed (exit 1): planted", 0.0))
                continue
            config = yaml.safe_load(spec.config_yaml)
            metrics = {"status": "ok", "rate_constants_R2": self.metric(config)}
            results.append(RunResult(spec.node, "done", metrics, None, 0.0))
        self._queue = []
        return results

    def shutdown(self) -> None:
        self._queue = []


def node_row(
    node_id: int,
    *,
    block: int = 1,
    slot: int = 0,
    parent: int | None = None,
    mutation=None,
    config=None,
    strategy: str = "exploit",
    robust_of: int | None = None,
    seed: int = 0,
) -> dict:
    return {
        "id": node_id,
        "block": block,
        "slot": slot,
        "parent": parent,
        "robust_of": robust_of,
        "config": config or {"training": {"learning_rate_k": 0.02, "seed": seed}, "simulation": {"seed": 42}},
        "mutation": mutation or {},
        "strategy": strategy,
        "rationale": "",
        "agent": "rule",
        "training_seed": seed,
        "simulation_seed": 42,
        "code_revision": "test",
        "run_dir": f"iterations/iter_{node_id:03d}/run",
    }


def finished_store(path: Path, rows: list[dict], results: dict[int, float | None]) -> Store:
    """A store with ``rows`` recorded and finished: a float is a done run's metric, None a failed run."""
    store = Store(path)
    store.add_nodes(rows)
    for node_id, value in results.items():
        if value is None:
            store.record_result(
                node_id, status="failed", metrics=None, failure="crashed (exit 1): boom", run_seconds=1.0
            )
        else:
            store.record_result(
                node_id,
                status="done",
                metrics={"status": "ok", "rate_constants_R2": value},
                failure=None,
                run_seconds=1.0,
            )
    return store
