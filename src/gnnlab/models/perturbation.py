r"""Perturbation-effect predictors: a graph convolution network in a space of constant curvature, and an
MLP baseline without the graph.

Genes are encoded from what the screen measured about them (their response to every training knock-down,
their control expression), refined along the observed interaction graph, and placed at points
:math:`z_g`. A knock-down then travels along the observed edges the way the simulator's effects do:

.. math:: e^{(0)} = e_\text{self}\,\delta_k, \qquad e^{(t+1)} = e^{(0)} + W^\top e^{(t)}, \qquad
          \hat E_k = b + e^{(T)}, \qquad
          W_{ij} = s_i s_j \tanh m\big(d(z_i, z_j),\ d(0, z_j) - d(0, z_i)\big)

for each observed edge i-j (both directions), with :math:`s = \tanh(\text{linear}(x))` learned signs,
:math:`m` an MLP whose last layer starts at zero, :math:`b` per-gene offsets started at the mean training
effect (so an untrained model *is* the mean-effect baseline off the target) and :math:`e_\text{self}` the
knock-down's own effect. Whether i regulates j is read off the geometry: a target lies near its regulator
and deeper (farther from the origin); the Poincaré ball holds such a hierarchy with low distortion in few
dimensions, where flat space cannot.

``geometry: poincare`` uses :class:`geoopt.PoincareBall` (curvature -c, optionally learned);
``geometry: euclidean`` runs the *same code* on :class:`geoopt.Stereographic` with curvature 0, where every
Möbius operation reduces to its Euclidean counterpart. Each layer follows HGCN (Chami et al., 2019):
Möbius matrix-vector product, Möbius bias addition (a point on the manifold, trained by Riemannian Adam),
neighbourhood aggregation in the tangent space at the origin, non-linearity in that tangent space.
"""

import geoopt
import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_undirected

from gnnlab.config.perturbation import PerturbationModel
from gnnlab.models._base import mlp
from gnnlab.systems.perturbation.simulator import PerturbationObservations


def gene_features(observations: PerturbationObservations) -> np.ndarray:
    """(G, P + 1): each gene's measured log-fold change under every training knock-down, and its log mean
    control expression. A knocked gene's own entry is zeroed, so genes that were knocked down look like
    the held-out ones, whose own knock-down was never measured."""
    labels, effects = observations.effects()
    response = effects.T.copy()
    response[observations.gene_index(labels), np.arange(len(labels))] = 0.0
    control = observations.counts[observations.perturbation == observations.control_label]
    log_mean = np.log(control.mean(0) + 0.1)
    return np.concatenate([response, log_mean[:, None]], axis=1).astype(np.float32)


def measured_terms(observations: PerturbationObservations) -> tuple[Tensor, Tensor, Tensor]:
    """What both models start from: standardised gene features (G, F), each gene's mean measured change
    under the training knock-downs of *other* genes (G,) (the mean-effect baseline), and the mean change of
    a knocked gene itself ()."""
    features = torch.as_tensor(gene_features(observations))
    standardised = (features - features.mean(0)) / features.std(0).clamp_min(1e-6)
    labels, effects = observations.effects()
    own = (np.arange(len(labels)), observations.gene_index(labels))
    off_target = effects.astype(np.float64)
    off_target[own] = np.nan
    offset = torch.as_tensor(np.nan_to_num(np.nanmean(off_target, axis=0)), dtype=torch.float32)
    return standardised, offset, torch.tensor(float(effects[own].mean()))


def make_manifold(model: PerturbationModel) -> geoopt.Stereographic:
    """The Poincaré ball of curvature -c (learned if asked), or the flat twin (curvature 0)."""
    if model.geometry == "poincare":
        return geoopt.PoincareBall(c=model.curvature, learnable=model.learn_curvature)
    return geoopt.Stereographic(k=0.0, learnable=False)


class TangentAggregation(MessagePassing):
    r"""Symmetric-normalised neighbourhood sum of tangent vectors: :math:`v_i' = \sum_j \hat A_{ij} v_j`
    with :math:`\hat A = D^{-1/2}(A + I)D^{-1/2}`; an isolated gene keeps its own vector."""

    def __init__(self) -> None:
        super().__init__(aggr="add")

    def forward(self, v: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
        return self.propagate(edge_index, v=v, edge_weight=edge_weight)

    def message(self, v_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * v_j


class CurvedGraphConv(nn.Module):
    """One HGCN layer on the manifold passed to :meth:`forward`.

    Shapes: x (G, d_in) on the manifold -> (G, d_out) on the manifold.
    """

    def __init__(self, manifold: geoopt.Stereographic, d_in: int, d_out: int, *, activation: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.xavier_uniform_(self.weight)
        self.bias = geoopt.ManifoldParameter(torch.zeros(d_out), manifold=manifold)
        self.aggregate = TangentAggregation()
        self.activation = activation

    def forward(
        self, manifold: geoopt.Stereographic, x: Tensor, edge_index: Tensor, edge_weight: Tensor
    ) -> Tensor:
        h = manifold.projx(manifold.mobius_matvec(self.weight, x))
        h = manifold.projx(manifold.mobius_add(h, self.bias))
        v = self.aggregate(manifold.logmap0(h), edge_index, edge_weight)
        if self.activation:
            v = nn.functional.silu(v)
        return manifold.projx(manifold.expmap0(v))


class PerturbationGNN(nn.Module):
    """Predicts every gene's log-fold change under knock-downs of any gene (see the module docstring).

    Built from observations only: gene features, training-effect means and the observed graph become
    buffers, so a saved state dict plus the same observations restore the model exactly.
    """

    def __init__(self, observations: PerturbationObservations, config: PerturbationModel):
        super().__init__()
        features, offset, self_effect = measured_terms(observations)
        self.register_buffer("features", features)
        self.input_clip = config.input_clip
        g = observations.n_genes
        edges = torch.as_tensor(observations.observed_edges, dtype=torch.long)
        edge_index, edge_weight = gcn_norm(to_undirected(edges, num_nodes=g), None, g, add_self_loops=True)
        self.register_buffer("edge_index", edge_index)
        self.register_buffer("edge_weight", edge_weight)
        self.register_buffer("propagation_index", to_undirected(edges, num_nodes=g))
        self.propagation_steps = config.propagation_steps
        self.spread = TangentAggregation()

        self.manifold = make_manifold(config)
        widths = [config.hidden_dim] * config.n_layers + [config.embedding_dim]
        self.input = nn.Linear(features.shape[1], config.hidden_dim)
        self.layers = nn.ModuleList(
            CurvedGraphConv(self.manifold, d_in, d_out, activation=i < config.n_layers - 1)
            for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        )
        self.sign = nn.Linear(features.shape[1], 1)
        self.decoder = mlp(2, config.decoder_hidden_dim, 2, activation="silu")
        self.offset = nn.Parameter(offset)
        self.self_effect = nn.Parameter(self_effect)

    def inputs(self, x: Tensor | None = None) -> Tensor:
        """Standardised gene features (or ``x``), clipped so no value can overflow the encoder."""
        return (self.features if x is None else x).clamp(-self.input_clip, self.input_clip)

    def embed(self, x: Tensor | None = None) -> Tensor:
        """Gene points z (G, embedding_dim) on the manifold."""
        x = self.inputs(x)
        z = self.manifold.projx(self.manifold.expmap0(self.input(x)))
        for layer in self.layers:
            z = layer(self.manifold, z, self.edge_index, self.edge_weight)
        return z

    def edge_shares(self, x: Tensor | None = None) -> Tensor:
        """w (E,): the signed share of a change each observed edge passes on, in both directions."""
        x = self.inputs(x)
        z = self.embed(x)
        source, target = self.propagation_index
        distance = self.manifold.dist(z[source], z[target])
        depth = self.manifold.dist0(z)
        features = torch.stack([distance, depth[target] - depth[source]], dim=-1)
        s = torch.tanh(self.sign(x)).squeeze(-1)
        return s[source] * s[target] * torch.tanh(self.decoder(features).squeeze(-1))

    def predict(self, knocked: Tensor, x: Tensor | None = None) -> Tensor:
        """Log-fold changes (P, G) of every gene under knock-down of each gene index in ``knocked`` (P,)."""
        share = self.edge_shares(x)
        shock = self.self_effect * nn.functional.one_hot(knocked, self.offset.shape[0]).T.to(share.dtype)
        change = shock
        for _ in range(self.propagation_steps):
            change = shock + self.spread(change, self.propagation_index, share)
        return self.offset[None, :] + change.T

    @property
    def curvature(self) -> float:
        """-K of the manifold: c for the ball, 0 for the flat twin."""
        return float(-self.manifold.k.detach())


class PerturbationMLP(nn.Module):
    r"""The graph-free baseline: the knocked gene's features through an MLP to every gene's change,
    :math:`\hat E_k = b + \mathrm{MLP}(x_k)`, plus the same offsets and own-effect term as the GNN."""

    def __init__(self, observations: PerturbationObservations, config: PerturbationModel):
        super().__init__()
        features, offset, self_effect = measured_terms(observations)
        self.register_buffer("features", features)
        self.input_clip = config.input_clip
        layers: list[nn.Module] = []
        width = features.shape[1]
        for _ in range(config.n_layers):
            layers += [nn.Linear(width, config.hidden_dim), nn.SiLU()]
            width = config.hidden_dim
        out = nn.Linear(width, observations.n_genes)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.mlp = nn.Sequential(*layers, out)
        self.offset = nn.Parameter(offset)
        self.self_effect = nn.Parameter(self_effect)

    def predict(self, knocked: Tensor) -> Tensor:
        """Log-fold changes (P, G) of every gene under knock-down of each gene index in ``knocked`` (P,)."""
        x = self.features.clamp(-self.input_clip, self.input_clip)[knocked]
        own = nn.functional.one_hot(knocked, self.offset.shape[0]).to(x.dtype)
        return self.offset[None, :] + self.mlp(x) + self.self_effect * own


def build_perturbation_model(
    observations: PerturbationObservations, config: PerturbationModel
) -> PerturbationGNN | PerturbationMLP:
    """The model ``config.architecture`` names."""
    return (PerturbationGNN if config.architecture == "graph" else PerturbationMLP)(observations, config)


ENSEMBLE_SEED_STRIDE = 1_000_000  # between ensemble members' seeds: beyond the consecutive seeds sweeps use


def member_seed(seed: int, member: int) -> int:
    """The training seed of ensemble member ``member``. Member 0 keeps ``seed``, so a one-member ensemble is
    the single model; the others lie :data:`ENSEMBLE_SEED_STRIDE` apart, so no member of one run shares its
    initialisation and batch order with a member of a run at a nearby seed."""
    return seed + member * ENSEMBLE_SEED_STRIDE


class PerturbationEnsemble(nn.Module):
    """A deep ensemble: predicts the mean of its members' predicted changes.

    One network's held-out score moves by about 0.2 between initialisations; the mean of K independently
    initialised and trained members averages that noise down. Members are built by
    :func:`gnnlab.models.build_model` (member k from :func:`member_seed`) and trained one by one.
    """

    def __init__(self, members: list[PerturbationGNN | PerturbationMLP]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def predict(self, knocked: Tensor) -> Tensor:
        """Mean over members of the log-fold changes (P, G) under knock-down of each index in ``knocked``."""
        return torch.stack([member.predict(knocked) for member in self.members]).mean(0)


__all__ = [
    "ENSEMBLE_SEED_STRIDE",
    "CurvedGraphConv",
    "PerturbationEnsemble",
    "PerturbationGNN",
    "PerturbationMLP",
    "TangentAggregation",
    "build_perturbation_model",
    "gene_features",
    "make_manifold",
    "measured_terms",
    "member_seed",
]
