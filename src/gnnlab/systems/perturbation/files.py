"""Real screens from local files: an ``.h5ad`` of counts with a perturbation label per cell, and a
gene-interaction edge list. Nothing is downloaded.

The held-out knock-downs are drawn with ``simulation.seed``; their cells go to the ground-truth record as
measured effects (the true network of a real screen is unknown), so training never sees them.
"""

import anndata
import numpy as np
import pandas as pd

from gnnlab.config.perturbation import PerturbationSimulation
from gnnlab.errors import DataError
from gnnlab.systems.perturbation.simulator import (
    PerturbationGroundTruth,
    PerturbationObservations,
    pseudobulk_effects,
)


def read_edges(path, gene_names: np.ndarray) -> np.ndarray:  # noqa: ANN001 - str or Path
    """Undirected pairs (2, E) of known genes from a two-column file (tab, comma or space separated; a
    header or extra columns such as a score are ignored). Pairs naming an unmeasured gene are dropped."""
    table = pd.read_csv(path, sep=None, engine="python", header=None, usecols=[0, 1], dtype=str)
    lookup = {name: i for i, name in enumerate(gene_names)}
    pairs = {
        tuple(sorted((lookup[a], lookup[b])))
        for a, b in table.itertuples(index=False)
        if a in lookup and b in lookup and a != b
    }
    return np.array(sorted(pairs), dtype=np.int64).T.reshape(2, -1)


def load_files(config: PerturbationSimulation) -> tuple[PerturbationObservations, PerturbationGroundTruth]:
    """Observations and held-out measured effects of a real screen, split as ``config`` says."""
    if not config.h5ad_path.is_file() or not config.edges_path.is_file():
        raise DataError(f"missing input file: {config.h5ad_path} or {config.edges_path}")
    adata = anndata.read_h5ad(config.h5ad_path)
    if config.perturbation_key not in adata.obs:
        raise DataError(f"{config.h5ad_path}: obs has no column {config.perturbation_key!r}")
    labels = adata.obs[config.perturbation_key].astype(str).to_numpy()
    gene_names = np.asarray(adata.var_names, dtype=str)
    perturbations = np.array(sorted(set(labels) & set(gene_names)))
    if (labels == config.control_label).sum() == 0:
        raise DataError(f"{config.h5ad_path}: no cell is labelled {config.control_label!r}")
    if len(perturbations) <= config.n_heldout_perturbations:
        raise DataError(
            f"{config.h5ad_path}: {len(perturbations)} perturbations of measured genes, need more than "
            f"n_heldout_perturbations = {config.n_heldout_perturbations}"
        )
    rng = np.random.default_rng(config.seed)
    heldout = np.sort(rng.choice(perturbations, size=config.n_heldout_perturbations, replace=False))
    counts = np.asarray(adata.X.todense() if hasattr(adata.X, "todense") else adata.X, dtype=np.int32)
    train_cells = np.isin(labels, perturbations[~np.isin(perturbations, heldout)]) | (
        labels == config.control_label
    )
    test_cells = np.isin(labels, heldout) | (labels == config.control_label)
    test = anndata.AnnData(
        X=counts[test_cells],
        obs=pd.DataFrame({"perturbation": labels[test_cells]}, index=adata.obs_names[test_cells]),
    )
    measured_labels, measured = pseudobulk_effects(test, "perturbation", config.control_label)
    observations = PerturbationObservations(
        counts=counts[train_cells],
        perturbation=labels[train_cells],
        gene_names=gene_names,
        observed_edges=read_edges(config.edges_path, gene_names),
        heldout_perturbations=heldout,
        control_label=config.control_label,
    )
    truth = PerturbationGroundTruth(
        perturbations=measured_labels,
        effects=measured,
        edge_index=np.zeros((2, 0), dtype=np.int64),
        edge_sign=np.zeros(0),
        edge_weight=np.zeros(0),
        depth=np.full(len(gene_names), -1),
    )
    return observations, truth
