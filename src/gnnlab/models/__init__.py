"""Learnable models, one per system, registered by name."""

import torch

from gnnlab.config import Config
from gnnlab.models._base import DynamicsModel, count_parameters
from gnnlab.models.metabolism import MetabolismGNN
from gnnlab.systems import Observations

MODELS: dict[str, type[DynamicsModel]] = {"metabolism": MetabolismGNN}


def build_model(config: Config, observations: Observations) -> DynamicsModel:
    """The model of ``config.system``, initialised from ``config.training.seed``.

    The global RNG is left as it was, so building a model never shifts other random streams.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.training.seed)
        return MODELS[config.system](observations, config.model)


__all__ = ["MODELS", "DynamicsModel", "build_model", "count_parameters"]
