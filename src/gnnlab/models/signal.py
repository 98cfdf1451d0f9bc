r"""The GNN of the signal system: du_i/dt = f_theta(u_i, a_i) + sum_j W_ij g_phi(u_j, a_j) + e_i.

Gauge, fixed by construction: g_phi(u, a) = tanh(exp(l(a)) (u - c(a))) with l, c read from the neuron's
embedding. It is increasing in u and saturates at exactly -1 and +1, the range of the true tanh transfer
function, so neither a sign flip nor a rescaling of W can be absorbed by g_phi; the recurrent term enters
f additively with coefficient 1, so f cannot absorb it either. W is therefore learned as gain * W_true,
and the metric divides by the configured gain (one documented global positive scale).
g_phi is evaluated once per neuron and then gathered along edges by sparse message passing.
"""

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from gnnlab.config.signal import SignalModelConfig
from gnnlab.models._base import DynamicsModel, check_groups, mlp
from gnnlab.systems.signal.simulator import SignalObservations


class WeightedSum(MessagePassing):
    """Sum over incoming edges of weight * source feature; features are (N, B), one column per frame.

    The edge weights become a sparse (target, source) adjacency and message and aggregation are fused
    into one sparse-dense product, so no (E, B) tensor of messages is ever built: on 2 CPU cores this
    is 2-3x faster than gathering x_j per edge for N = 100 and all 9,900 candidate edges.

    Without autograd (rollouts, validation), the adjacency is built once and kept until the weights change
    (their version counter moves with every in-place update): dense when the edges fill a quarter of it or
    more, coalesced sparse otherwise. A rollout steps one frame at a time, where rebuilding and coalescing
    a COO matrix of a million edges dominated (36 ms a step at N = 1000, 10k steps in a held-out run).
    """

    def __init__(self) -> None:
        super().__init__(aggr="add", node_dim=0)
        self._frozen: tuple[tuple[int, ...], Tensor] | None = None

    def forward(self, x: Tensor, edge_index: Tensor, weight: Tensor) -> Tensor:
        n = x.shape[0]
        if not (torch.is_grad_enabled() and weight.requires_grad):
            return self.frozen_adjacency(edge_index, weight, n) @ x
        adj_t = torch.sparse_coo_tensor(  # indices were range-checked when the model was built
            edge_index.flip(0), weight, (n, n), is_coalesced=False, check_invariants=False
        )
        return self.propagate(adj_t, x=x)

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return torch.sparse.mm(adj_t, x)

    def frozen_adjacency(self, edge_index: Tensor, weight: Tensor, n: int) -> Tensor:
        """The (target, source) adjacency of the current weights, rebuilt only when they change."""
        key = (weight.data_ptr(), weight._version, edge_index.data_ptr(), edge_index._version, n)
        if self._frozen is None or self._frozen[0] != key:
            if 4 * edge_index.shape[1] >= n * n:
                adjacency = torch.zeros(n, n, dtype=weight.dtype, device=weight.device)
                adjacency.index_put_((edge_index[1], edge_index[0]), weight.detach(), accumulate=True)
            else:  # never a dense (N, N) on the way: at 13,741 fly neurons it would take 0.75 GB
                adjacency = torch.sparse_coo_tensor(
                    edge_index.flip(0), weight.detach(), (n, n), check_invariants=False
                ).coalesce()
            self._frozen = (key, adjacency)
        return self._frozen[1]


class SignalModel(DynamicsModel):
    """One learnable weight per candidate edge, per-neuron embeddings, g_phi and f_theta MLPs."""

    def __init__(
        self,
        edge_index: Tensor,
        n_neurons: int,
        embedding_dim: int = 2,
        hidden_dim: int = 32,
        n_layers: int = 2,
        activation: str = "tanh",
        activity_scale: float = 1.0,
    ) -> None:
        super().__init__()
        # f_theta reads u / activity_scale: at gain 10 the activity spans about +-15, where a tanh MLP fed
        # raw u saturates and fits the linear decay -a u only slowly
        self.register_buffer("activity_scale", torch.tensor(float(activity_scale)))
        if edge_index.numel() and not (0 <= int(edge_index.min()) and int(edge_index.max()) < n_neurons):
            raise ValueError(f"edge_index must hold neuron indices in [0, {n_neurons}) (got {edge_index})")
        self.register_buffer("edge_index", edge_index.long())
        self.W = nn.Parameter(torch.zeros(edge_index.shape[1]))
        self.embedding = nn.Parameter(0.1 * torch.randn(n_neurons, embedding_dim))
        self.transfer = mlp(embedding_dim, hidden_dim, n_layers, activation=activation)  # -> l, c
        self.transfer[-1] = nn.Linear(hidden_dim, 2)
        nn.init.zeros_(self.transfer[-1].weight)
        nn.init.zeros_(self.transfer[-1].bias)
        self.node = mlp(1 + embedding_dim, hidden_dim, n_layers, activation=activation)
        self.aggregate = WeightedSum()

    def g_phi(self, u: Tensor) -> Tensor:
        """Transfer function of each presynaptic neuron, (B, N) -> (B, N), values in (-1, 1)."""
        log_slope, centre = self.transfer(self.embedding).unbind(-1)
        return torch.tanh(log_slope.exp() * (u - centre))

    def f_theta(self, u: Tensor, neurons: Tensor | None = None) -> Tensor:
        """Intrinsic dynamics of each neuron, (B, N) -> (B, N); with ``neurons`` (K,), u is their (B, K)."""
        embedding = self.embedding if neurons is None else self.embedding[neurons]
        emb = embedding.expand(u.shape[0], -1, -1)
        return self.node(torch.cat([(u / self.activity_scale)[..., None], emb], dim=-1)).squeeze(-1)

    def derivative(self, states: Tensor, inputs: Tensor) -> Tensor:
        recurrent = self.aggregate(self.g_phi(states).T, self.edge_index, self.W).T
        return self.f_theta(states) + recurrent + inputs

    # --- linear in W: what variable projection (training/projection.py) needs -------------------------------
    def intrinsic(self, states: Tensor, inputs: Tensor, neurons: Tensor | None = None) -> Tensor:
        """The derivative without the recurrent term: f_theta + inputs, (B, N), or (B, K) for ``neurons``."""
        if neurons is None:
            return self.f_theta(states) + inputs
        return self.f_theta(states[:, neurons], neurons) + inputs[:, neurons]

    def candidates(self) -> Tensor:
        """(N, N) bool, [target, source]: which entries of the dense W are learnable edges."""
        n = self.embedding.shape[0]
        mask = torch.zeros(n, n, dtype=torch.bool, device=self.W.device)
        mask[self.edge_index[1], self.edge_index[0]] = True
        return mask

    def set_dense_weights(self, dense: Tensor) -> None:
        """Load a dense [target, source] W into the edge weights."""
        with torch.no_grad():
            self.W.copy_(dense[self.edge_index[1], self.edge_index[0]])

    def param_groups(self, training: Any) -> list[dict[str, Any]]:
        mlp_params = [*self.transfer.parameters(), *self.node.parameters()]
        lr_embedding = training.learning_rate_embedding_start
        return check_groups(
            self,
            [
                {"name": "W", "params": [self.W], "lr": training.learning_rate_W_start},
                {"name": "mlp", "params": mlp_params, "lr": training.learning_rate_start},
                {"name": "embedding", "params": [self.embedding], "lr": lr_embedding},
            ],
        )

    def penalty(self, states: Tensor, training: Any) -> Tensor:
        """L1 on W (sparsity when the support is unknown)."""
        return training.coeff_W_L1 * self.W.abs().sum()


def build_signal_model(observations: SignalObservations, section: SignalModelConfig) -> SignalModel:
    """One weight per candidate edge of the observations (true support or all pairs), sized by ``section``;
    f_theta's input scale is the observed activity's standard deviation."""
    return SignalModel(
        torch.as_tensor(observations.edge_index),
        n_neurons=observations.activity.shape[2],
        embedding_dim=section.embedding_dim,
        hidden_dim=section.hidden_dim,
        n_layers=section.n_layers,
        activation=section.activation,
        activity_scale=float(observations.activity.std()),
    )
