r"""Perturb-seq-like count data: knock-downs on a hidden regulatory network, observed as single cells.

Cell c with label p (a knocked gene, or control) draws counts

.. math:: x_{cg} \sim \mathrm{NB}\big(\text{mean} = \ell_c\, \mu_g\, e^{E_{pg}},\ r\big),

with :math:`\mu_g` the gene's baseline, :math:`\ell_c` a log-normal library size and :math:`E_{pg}` the
true log-fold change (:mod:`.network`). The counts are an :class:`anndata.AnnData` with
``obs['perturbation']``; the model sees them only through :meth:`PerturbationObservations.effects`, the
pseudobulk log-fold change against control cells, which real data (:mod:`.files`) give the same way.
"""

import dataclasses

import anndata
import numpy as np
import pandas as pd

from gnnlab.config.perturbation import PerturbationSimulation
from gnnlab.systems._base import GroundTruth, Observations, System
from gnnlab.systems.perturbation.network import (
    RegulatoryNetwork,
    observed_graph,
    random_network,
    tree_network,
)

PSEUDOCOUNT = 0.1  # added to normalised pseudobulk means before the log, so an unexpressed gene stays finite


@dataclasses.dataclass(frozen=True)
class PerturbationObservations(Observations):
    """What an experimenter has: counts of control cells and of the *training* perturbations, the gene
    names, an interaction graph from a database, and which knock-downs to predict (their cells are not
    here). A perturbation label is the knocked gene's name."""

    counts: np.ndarray  # (cells, G) int32
    perturbation: np.ndarray  # (cells,) str: a gene name or control_label
    gene_names: np.ndarray  # (G,) str
    observed_edges: np.ndarray  # (2, E) int, undirected pairs listed once
    heldout_perturbations: np.ndarray  # (H,) str: knock-downs to predict
    control_label: str

    @property
    def n_genes(self) -> int:
        return self.gene_names.shape[0]

    def gene_index(self, labels: np.ndarray) -> np.ndarray:
        """Column of each knocked gene in ``labels``."""
        lookup = {name: i for i, name in enumerate(self.gene_names)}
        return np.array([lookup[label] for label in labels], dtype=np.int64)

    def anndata(self) -> anndata.AnnData:
        """The counts as AnnData (``obs['perturbation']``, genes as ``var_names``)."""
        obs = pd.DataFrame(
            {"perturbation": self.perturbation}, index=[f"cell{i}" for i in range(len(self.counts))]
        )
        return anndata.AnnData(X=self.counts, obs=obs, var=pd.DataFrame(index=list(self.gene_names)))

    def effects(self) -> tuple[np.ndarray, np.ndarray]:
        """Training labels (P,) and their measured log-fold changes (P, G) against control cells."""
        return pseudobulk_effects(self.anndata(), "perturbation", self.control_label)


def pseudobulk_effects(adata: anndata.AnnData, key: str, control: str) -> tuple[np.ndarray, np.ndarray]:
    """Per non-control label: log of mean library-normalised expression over its cells, minus the same for
    control cells. Normalising each cell to the median library size removes depth differences."""
    counts = np.asarray(adata.X, dtype=np.float64)
    totals = counts.sum(1, keepdims=True)
    normalised = counts / np.maximum(totals, 1.0) * np.median(totals)
    labels = adata.obs[key].astype(str).to_numpy()
    control_mean = np.log(normalised[labels == control].mean(0) + PSEUDOCOUNT)
    perturbations = np.array(sorted(set(labels) - {control}))
    effects = np.stack([np.log(normalised[labels == p].mean(0) + PSEUDOCOUNT) for p in perturbations])
    return perturbations, (effects - control_mean).astype(np.float32).reshape(len(perturbations), -1)


@dataclasses.dataclass(frozen=True)
class PerturbationGroundTruth(GroundTruth):
    """What only evaluation may see: the true network and every perturbation's true log-fold change.

    For real data (:mod:`.files`) the network is unknown (no edges, depth -1) and the "true" effects are the
    held-out perturbations' measured ones.
    """

    perturbations: np.ndarray  # (P,) str
    effects: np.ndarray  # (P, G) float32
    edge_index: np.ndarray  # (2, E) int, regulator -> target
    edge_sign: np.ndarray  # (E,)
    edge_weight: np.ndarray  # (E,)
    depth: np.ndarray  # (G,) int

    def effects_of(self, labels: np.ndarray) -> np.ndarray:
        row = {label: i for i, label in enumerate(self.perturbations)}
        return self.effects[[row[label] for label in labels]]


def _network(config: PerturbationSimulation, rng: np.random.Generator) -> RegulatoryNetwork:
    tree = tree_network(
        config.n_genes,
        max_children=config.max_children,
        cross_edge_fraction=config.cross_edge_fraction,
        weight_min=config.edge_weight_min,
        weight_max=config.edge_weight_max,
        rng=rng,
    )
    if config.network == "tree":
        return tree
    # the control draws its own edges but keeps the tree's edge count, so only the hierarchy differs
    return random_network(
        config.n_genes,
        tree.edge_index.shape[1],
        weight_min=config.edge_weight_min,
        weight_max=config.edge_weight_max,
        rng=rng,
    )


def simulate_counts(
    config: PerturbationSimulation,
    effects: np.ndarray,
    labels: list[str],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Negative-binomial counts for control cells then ``n_cells_per_perturbation`` cells per label."""
    g = effects.shape[1]
    baseline = config.mean_expression * np.exp(config.expression_spread * rng.standard_normal(g))
    log_change = np.concatenate(
        [np.zeros((config.n_control_cells, g)), np.repeat(effects, config.n_cells_per_perturbation, axis=0)]
    )
    cell_labels = np.array(
        [config.control_label] * config.n_control_cells
        + [label for label in labels for _ in range(config.n_cells_per_perturbation)]
    )
    library = np.exp(config.library_size_spread * rng.standard_normal((len(cell_labels), 1)))
    mean = library * baseline * np.exp(log_change)
    r = config.dispersion
    counts = rng.negative_binomial(r, r / (r + mean)).astype(np.int32)
    return counts, cell_labels


class PerturbationSystem(System):
    """Knock-down screens on a hidden regulatory network (synthetic), or real screens from local files."""

    name = "perturbation"
    simulation_config = PerturbationSimulation
    observations_type = PerturbationObservations
    ground_truth_type = PerturbationGroundTruth

    def simulate(self, config: PerturbationSimulation) -> tuple[PerturbationObservations, GroundTruth]:
        if config.source == "files":
            from gnnlab.systems.perturbation.files import load_files

            return load_files(config)
        rng = np.random.default_rng(config.seed)
        network = _network(config, rng)
        regulators = network.regulators()
        if len(regulators) < config.n_perturbations:
            raise ValueError(
                f"only {len(regulators)} genes have targets; n_perturbations = {config.n_perturbations}"
            )
        knocked = np.sort(rng.choice(regulators, size=config.n_perturbations, replace=False))
        effects = network.effects(
            knocked, propagation=config.propagation, knockdown_efficiency=config.knockdown_efficiency
        )
        names = np.array([f"G{i:04d}" for i in range(config.n_genes)])
        heldout = np.zeros(len(knocked), dtype=bool)
        heldout[rng.choice(len(knocked), size=config.n_heldout_perturbations, replace=False)] = True
        counts, cell_labels = simulate_counts(config, effects[~heldout], list(names[knocked[~heldout]]), rng)
        graph = observed_graph(
            network,
            drop=config.observed_edge_drop,
            spurious_fraction=config.observed_spurious_fraction,
            rng=rng,
        )
        observations = PerturbationObservations(
            counts=counts,
            perturbation=cell_labels,
            gene_names=names,
            observed_edges=graph,
            heldout_perturbations=names[knocked[heldout]],
            control_label=config.control_label,
        )
        truth = PerturbationGroundTruth(
            perturbations=names[knocked],
            effects=effects.astype(np.float32),
            edge_index=network.edge_index,
            edge_sign=network.sign,
            edge_weight=network.weight,
            depth=network.depth,
        )
        return observations, truth
