r"""The metabolism GNN: a learnable version of the simulator's equation on the same bipartite graph.

.. math::
    \frac{dc_i}{dt} = \mathrm{MLP_{node}}(c_i, a_i)
        + \sum_j S_{ij}\, k_j \prod_{k \in \mathrm{sub}(j)} g(c_k, r_{kj}) + u_i(t),
    \qquad \log g(c, s) = s\,[H(\ln c, s) - H(0, s)]

Two message-passing steps carry it out. Metabolite → reaction: each substrate sends log g(c_k, r_kj) and
the sum gives log of the product. Reaction → metabolite: each reaction sends k_j times that product,
weighted by S_ij. log g is evaluated once per (metabolite, order) pair that occurs, not once per edge.

``H`` is a linear map plus an MLP, so mass action (log g = s ln c) is exactly representable; g(1, s) = 1
by construction fixes the scale shared by g and k; and working in ln c turns the four decades of
concentration into an interval the MLP handles evenly.
"""

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import SimpleConv

from gnnlab.config import MetabolismModel, MetabolismTraining
from gnnlab.models._base import DynamicsModel, check_groups, mlp
from gnnlab.systems.metabolism.simulator import MetabolismObservations

CONCENTRATION_FLOOR = 1e-6  # ln c is taken of max(c, floor): lower readings all look like zero to g


class SubstrateFunction(nn.Module):
    """log g(c, s) with g(1, s) = 1: ``s * (H(x(c), s) - H(x(1), s))``, H = linear in x + MLP(x, s).

    With ``x = ln c`` (default) mass action is H linear; with ``x = c`` (an ablation) it is not representable.
    """

    def __init__(self, hidden: int, n_layers: int, activation: str, substrate_input: str):
        super().__init__()
        # Anything H adds that does not depend on x cancels in H(x(c), s) - H(x(1), s), so the linear part
        # reads x alone and the MLP has no output bias: no parameter is a dead gauge direction.
        # The slope starts at 0 (g = 1, no concentration dependence): a randomly signed slope let some
        # seeds begin with g growing as c -> 0, rates of order 1e7 and a basin the optimiser never left.
        self.linear = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(self.linear.weight)
        self.mlp = mlp(2, hidden, n_layers, activation=activation, output_bias=False)
        self.log_input = substrate_input == "log_concentration"

    def _h(self, x: Tensor, order: Tensor) -> Tensor:
        return (self.linear(x.unsqueeze(-1)) + self.mlp(torch.stack([x, order], dim=-1))).squeeze(-1)

    def forward(self, concentration: Tensor, order: Tensor) -> Tensor:
        """log g for concentrations (..., P) at substrate orders (P,) (any shapes that broadcast).

        H(x(1), s) depends on the order alone, so it is evaluated once per order entry, not per concentration:
        a full-batch pass of the 400-metabolite network spent a third of its substrate-MLP time on it."""
        c = concentration.clamp_min(CONCENTRATION_FLOOR)
        x, one = (torch.log(c), torch.zeros_like(order)) if self.log_input else (c, torch.ones_like(order))
        shape = torch.broadcast_shapes(x.shape, order.shape)
        at_c = self._h(x.expand(shape), order.expand(shape))
        at_one = self._h(one, order)
        return order * (at_c - at_one)


class MetabolismGNN(DynamicsModel):
    """Learns log10 k (R,), g, MLP_node and embeddings a (N, embedding_dim) from observations."""

    def __init__(self, observations: MetabolismObservations, config: MetabolismModel):
        super().__init__()
        reactants = torch.as_tensor(observations.reactants, dtype=torch.float32)
        stoich = torch.as_tensor(observations.stoichiometry, dtype=torch.float32)
        n_met, n_rxn = stoich.shape

        sub_met, sub_rxn = torch.nonzero(reactants, as_tuple=True)
        slots, slot_of_edge = torch.unique(
            torch.stack([sub_met.float(), reactants[sub_met, sub_rxn]]), dim=1, return_inverse=True
        )
        self.register_buffer("slot_metabolite", slots[0].long())
        self.register_buffer("slot_order", slots[1])
        self.register_buffer("slot_to_reaction", torch.stack([slot_of_edge, sub_rxn]))
        rxn_met_met, rxn_met_rxn = torch.nonzero(stoich, as_tuple=True)
        self.register_buffer("reaction_to_metabolite", torch.stack([rxn_met_rxn, rxn_met_met]))
        self.register_buffer("flux_weight", stoich[rxn_met_met, rxn_met_rxn])
        self.n_metabolites, self.n_reactions = n_met, n_rxn

        self.log_k = nn.Parameter(torch.full((n_rxn,), float(config.log_k_init)))
        self.substrate = SubstrateFunction(
            config.hidden_dim_sub, config.n_layers_sub, config.activation, config.substrate_input
        )
        self.node = mlp(
            1 + config.embedding_dim,
            config.hidden_dim_node,
            config.n_layers_node,
            activation=config.activation,
        )
        self.embedding = nn.Parameter(0.1 * torch.randn(n_met, config.embedding_dim))
        # Phase 2's signal amplification (strategy 2) scales MLP_node inside the dynamics; phase 2 always
        # ends at 1, so a saved model is the plain equation and this is not part of the state dict.
        self.node_gain = 1.0
        self.gather = SimpleConv(aggr="sum")
        self.scatter = SimpleConv(aggr="sum")
        positive = observations.concentrations[observations.concentrations > 0]
        grid = np.geomspace(max(float(positive.min()), CONCENTRATION_FLOOR), float(positive.max()), 64)
        self.register_buffer("concentration_grid", torch.as_tensor(grid, dtype=torch.float32))

    def unit_rates(self, c: Tensor) -> Tensor:
        """phi_j = prod_{k in sub(j)} g(c_k, r_kj), the rates at k = 1: (B, N) -> (B, R)."""
        log_g = self.substrate(c[:, self.slot_metabolite], self.slot_order)
        log_phi = self.gather(
            (log_g.unsqueeze(-1), None), self.slot_to_reaction, size=(log_g.shape[1], self.n_reactions)
        )
        return torch.exp(log_phi.squeeze(-1))

    def reaction_term(self, c: Tensor) -> Tensor:
        """sum_j S_ij k_j phi_j: (B, N) -> (B, N)."""
        rates = self.unit_rates(c) * torch.pow(10.0, self.log_k)
        flux = self.scatter(
            (rates.unsqueeze(-1), None),
            self.reaction_to_metabolite,
            edge_weight=self.flux_weight,
            size=(self.n_reactions, self.n_metabolites),
        )
        return flux.squeeze(-1)

    def node_term(self, c: Tensor) -> Tensor:
        """MLP_node(c_i, a_i) (times ``node_gain``, 1 outside phase 2): (B, N) -> (B, N)."""
        embedding = self.embedding.expand(c.shape[0], -1, -1)
        out = self.node(torch.cat([c.unsqueeze(-1), embedding], dim=-1)).squeeze(-1)
        return out if self.node_gain == 1.0 else self.node_gain * out

    def derivative(self, states: Tensor, inputs: Tensor) -> Tensor:
        return self.node_term(states) + self.reaction_term(states) + inputs

    def param_groups(self, training: MetabolismTraining) -> list[dict[str, Any]]:
        return check_groups(
            self,
            [
                {"name": "k", "params": [self.log_k], "lr": training.learning_rate_k},
                {
                    "name": "sub",
                    "params": list(self.substrate.parameters()),
                    "lr": training.learning_rate_sub,
                },
                {"name": "node", "params": list(self.node.parameters()), "lr": training.learning_rate_node},
                {"name": "embedding", "params": [self.embedding], "lr": training.learning_rate_embedding},
            ],
        )

    def penalty(self, states: Tensor, training: MetabolismTraining) -> Tensor:
        total = states.new_zeros(())
        if training.coeff_MLP_sub_diff > 0:
            orders = torch.unique(self.slot_order)
            log_g = self.substrate(self.concentration_grid.unsqueeze(-1), orders)  # (grid, orders)
            total = total + training.coeff_MLP_sub_diff * torch.relu(log_g[:-1] - log_g[1:]).sum()
        if training.coeff_MLP_node_L1 > 0:
            total = total + training.coeff_MLP_node_L1 * self.node_term(states).abs().mean()
        return total
