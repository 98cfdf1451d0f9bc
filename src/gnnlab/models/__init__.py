"""Learnable models, one per system, registered by name."""

from collections.abc import Callable

import torch
from torch import nn

from gnnlab.config import Config
from gnnlab.models._base import DynamicsModel, count_parameters
from gnnlab.models.flyvis import build_flyvis_model
from gnnlab.models.metabolism import MetabolismGNN
from gnnlab.models.perturbation import PerturbationEnsemble, build_perturbation_model, member_seed
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
    """The model of ``config.system``, initialised from ``config.training.seed``; with
    ``training.n_ensemble`` = K > 1 (perturbation), an ensemble of K such models, member k initialised from
    ``member_seed(training.seed, k)`` (member 0 is the single model).

    The global RNG is left as it was, so building a model never shifts other random streams.
    """
    members = []
    for k in range(getattr(config.training, "n_ensemble", 1)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(member_seed(config.training.seed, k))
            members.append(MODELS[config.system](observations, config.model))
    return members[0] if len(members) == 1 else PerturbationEnsemble(members)


__all__ = ["MODELS", "DynamicsModel", "build_model", "count_parameters"]
