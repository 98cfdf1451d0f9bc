r"""Signed regulatory networks and the log-fold changes a knock-down causes along them.

A knock-down of gene k lowers its log expression by :math:`s = \log(1 - \text{efficiency})`; every target
inherits a share of its regulator's change, so the log-fold changes solve

.. math:: e = s\,\delta_k + \alpha W^\top e \quad\Rightarrow\quad e = s\,(I - \alpha W^\top)^{-1} \delta_k,

with :math:`W_{ij} = \pm w_{ij}` the signed edge weights and :math:`\alpha` the propagation share. The
networks are acyclic (edges only point to deeper genes), so the inverse always exists.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class RegulatoryNetwork:
    """Directed signed edges ``source -> target`` and each gene's depth below the root(s)."""

    edge_index: np.ndarray  # (2, E) int: regulator, target
    sign: np.ndarray  # (E,) +1 activation, -1 repression
    weight: np.ndarray  # (E,) > 0
    depth: np.ndarray  # (G,) int, level in the tree (random control: distance from an unregulated gene)

    @property
    def n_genes(self) -> int:
        return self.depth.shape[0]

    def regulators(self) -> np.ndarray:
        """Genes with at least one target, ascending."""
        return np.unique(self.edge_index[0])

    def effects(self, knocked: np.ndarray, *, propagation: float, knockdown_efficiency: float) -> np.ndarray:
        """Log-fold changes (P, G) of every gene when each gene in ``knocked`` (P,) is knocked down."""
        g = self.n_genes
        w = np.zeros((g, g))
        np.add.at(w, (self.edge_index[0], self.edge_index[1]), self.sign * self.weight)
        shock = np.zeros((g, len(knocked)))
        shock[knocked, np.arange(len(knocked))] = np.log1p(-knockdown_efficiency)
        return np.linalg.solve(np.eye(g) - propagation * w.T, shock).T


def _depths(n_genes: int, edge_index: np.ndarray) -> np.ndarray:
    """Breadth-first distance from the genes nobody regulates (edges point from lower to higher index)."""
    depth = np.full(n_genes, -1)
    has_parent = np.zeros(n_genes, dtype=bool)
    has_parent[edge_index[1]] = True
    depth[~has_parent] = 0
    order = np.argsort(edge_index[0], kind="stable")
    for source, target in edge_index[:, order].T:  # sources are processed in index order, a topological one
        if depth[target] < 0 or depth[target] > depth[source] + 1:
            depth[target] = depth[source] + 1
    return depth


def _signed(edges: np.ndarray, weight_min: float, weight_max: float, rng: np.random.Generator) -> tuple:
    sign = rng.choice([-1.0, 1.0], size=edges.shape[1])
    weight = rng.uniform(weight_min, weight_max, size=edges.shape[1])
    return sign, weight


def tree_network(
    n_genes: int,
    *,
    max_children: int,
    cross_edge_fraction: float,
    weight_min: float,
    weight_max: float,
    rng: np.random.Generator,
) -> RegulatoryNetwork:
    """A random tree rooted at gene 0, filled breadth-first (each regulator gets 1..max_children targets),
    plus cross-edges from a gene to a strictly deeper one. Genes are numbered in breadth-first order."""
    parent = np.full(n_genes, -1)
    next_gene, frontier = 1, [0]
    while next_gene < n_genes:
        regulator = frontier.pop(0)
        for _ in range(int(rng.integers(1, max_children + 1))):
            if next_gene == n_genes:
                break
            parent[next_gene] = regulator
            frontier.append(next_gene)
            next_gene += 1
    edges = np.stack([parent[1:], np.arange(1, n_genes)])
    depth = _depths(n_genes, edges)
    existing = set(map(tuple, edges.T))
    cross: list[tuple[int, int]] = []
    n_cross = int(round(cross_edge_fraction * edges.shape[1]))
    while len(cross) < n_cross:
        source, target = rng.integers(0, n_genes, size=2)
        if depth[target] > depth[source] and (source, target) not in existing:
            existing.add((int(source), int(target)))
            cross.append((int(source), int(target)))
    if cross:
        edges = np.concatenate([edges, np.array(cross).T], axis=1)
    sign, weight = _signed(edges, weight_min, weight_max, rng)
    return RegulatoryNetwork(edges, sign, weight, depth)  # the level in the tree; cross-edges skip levels


def random_network(
    n_genes: int, n_edges: int, *, weight_min: float, weight_max: float, rng: np.random.Generator
) -> RegulatoryNetwork:
    """The negative control: ``n_edges`` distinct edges i -> j (i < j) drawn uniformly, so acyclic, with
    the same signs and weights as a tree but no hierarchy."""
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < n_edges:
        a, b = sorted(int(x) for x in rng.choice(n_genes, size=2, replace=False))
        chosen.add((a, b))
    edges = np.array(sorted(chosen)).T
    sign, weight = _signed(edges, weight_min, weight_max, rng)
    return RegulatoryNetwork(edges, sign, weight, _depths(n_genes, edges))


def observed_graph(
    network: RegulatoryNetwork, *, drop: float, spurious_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """What an interaction database would list: undirected, unsigned, a share of true edges missing and
    random pairs added. Returns (2, E') with each pair once, smaller index first."""
    true_pairs = {tuple(sorted(map(int, e))) for e in network.edge_index.T}
    kept = {p for p in sorted(true_pairs) if rng.random() >= drop}
    n_spurious = int(round(spurious_fraction * len(true_pairs)))
    added: set[tuple[int, int]] = set()
    while len(added) < n_spurious:
        pair = tuple(sorted(int(x) for x in rng.choice(network.n_genes, size=2, replace=False)))
        if pair not in true_pairs:
            added.add(pair)
    pairs = sorted(kept | added)
    return np.array(pairs, dtype=np.int64).T.reshape(2, -1)
