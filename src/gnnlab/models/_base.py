"""What the trainer needs from a model: a vector field, parameter groups and optional penalties."""

import abc
from typing import Any

from torch import Tensor, nn

from gnnlab.config import TrainingBase


class DynamicsModel(nn.Module, abc.ABC):
    """A learnable vector field dx/dt = f(x, u) on a graph, trained on (state, derivative) pairs."""

    @abc.abstractmethod
    def derivative(self, states: Tensor, inputs: Tensor) -> Tensor:
        """Predicted dx/dt for ``states`` and known ``inputs``, both (B, N); returns (B, N)."""

    @abc.abstractmethod
    def param_groups(self, training: TrainingBase) -> list[dict[str, Any]]:
        """Optimiser groups ``{"name", "params", "lr"}`` covering every trainable parameter once."""

    def penalty(self, states: Tensor, training: TrainingBase) -> Tensor:
        """Regularisers added to the data loss (none by default)."""
        return states.new_zeros(())


ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "silu": nn.SiLU}


def mlp(d_in: int, hidden: int, n_layers: int, *, activation: str, output_bias: bool = True) -> nn.Sequential:
    """An MLP ``d_in -> hidden x n_layers -> 1`` with the named activation that starts as the zero function.

    Only the last layer is zeroed, so the hidden layers still pass gradients (zeroing every layer would
    leave constant features, zero gradients and a dead network). Starting at zero means a term the data
    do not call for stays out of the vector field.
    """
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    out = nn.Linear(width, 1, bias=output_bias)
    nn.init.zeros_(out.weight)
    if output_bias:
        nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


def check_groups(model: nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assert the groups partition the model's trainable parameters (a forgotten parameter never trains)."""
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    if sorted(grouped) != sorted(trainable):
        raise RuntimeError("parameter groups must cover every trainable parameter exactly once")
    return groups


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["DynamicsModel", "check_groups", "count_parameters", "mlp"]
