"""Evaluation: ground truth meets the trained model here, and only here."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gnnlab.evaluation import flyvis, metabolism, perturbation, signal
from gnnlab.evaluation.ground_truth import load_ground_truth

EVALUATORS: dict[str, Callable[..., dict[str, float]]] = {
    "metabolism": metabolism.evaluate,
    "perturbation": perturbation.evaluate,
    "signal": signal.evaluate,
    "flyvis": flyvis.evaluate,
}
PLOTTERS: dict[str, Callable[..., list[Path]]] = {
    "metabolism": metabolism.plot,
    "perturbation": perturbation.plot,
    "signal": signal.plot,
    "flyvis": flyvis.plot,
}


def evaluate(system: str, model: Any, observations: Any, truth: Any) -> dict[str, float]:
    """The recovery metrics of ``system`` for a trained model."""
    return EVALUATORS[system](model, observations, truth)


def plot(
    system: str, model: Any, observations: Any, truth: Any, history: dict, directory: Path
) -> list[Path]:
    """The standard figures of ``system``, written into ``directory``."""
    return PLOTTERS[system](model, observations, truth, history, directory)


__all__ = ["EVALUATORS", "PLOTTERS", "evaluate", "load_ground_truth", "plot"]
