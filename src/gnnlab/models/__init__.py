"""Learnable models, one per system, registered by name."""

from collections.abc import Callable

import torch
from torch import nn

from gnnlab.config import Config
from gnnlab.models._base import DynamicsModel, count_parameters
from gnnlab.models.flyvis import build_flyvis_model
from gnnlab.models.metabolism import MetabolismGNN
from gnnlab.models.perturbation import build_perturbation_model
from gnnlab.models.signal import build_signal_model
from gnnlab.systems import Observations

# system -> model(observations, model section)
MODELS: dict[str, Callable[..., nn.Module]] = {
    "metabolism": MetabolismGNN,
    "perturbation": build_perturbation_model,
    "signal": build_signal_model,
    "flyvis": build_flyvis_model,
}


def build_model(config: Config, observations: Observations) -> nn.Module:
    """The model of ``config.system``, initialised from ``config.training.seed``.

    The global RNG is left as it was, so building a model never shifts other random streams.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.training.seed)
        return MODELS[config.system](observations, config.model)


__all__ = ["MODELS", "DynamicsModel", "build_model", "count_parameters"]
