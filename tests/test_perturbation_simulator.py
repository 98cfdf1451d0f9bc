"""The perturbation simulator: a hierarchy, effects that travel only downstream, counts as AnnData with the
held-out knock-downs' cells absent, and a real-data loader that reads local files the same way."""

import anndata
import numpy as np
import pytest
from conftest import PERTURBATION_TINY

from gnnlab.config import load_config
from gnnlab.systems import get_system
from gnnlab.systems.perturbation.files import load_files
from gnnlab.systems.perturbation.network import random_network, tree_network


def tree(seed: int = 0, cross: float = 0.0):
    rng = np.random.default_rng(seed)
    return tree_network(
        255, max_children=3, cross_edge_fraction=cross, weight_min=0.6, weight_max=1.0, rng=rng
    )


def reachable(network, start: int) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        for target in network.edge_index[1][network.edge_index[0] == node]:
            if int(target) not in seen:
                seen.add(int(target))
                stack.append(int(target))
    return seen


def test_the_tree_has_one_root_and_every_other_gene_one_regulator_one_level_up():
    network = tree()
    source, target = network.edge_index
    assert network.edge_index.shape[1] == 254
    assert sorted(target.tolist()) == list(range(1, 255))
    assert np.all(network.depth[target] == network.depth[source] + 1)
    assert network.depth[0] == 0 and np.sum(network.depth == 0) == 1


def test_the_tree_widens_with_depth_as_a_hierarchy_does():
    counts = np.bincount(tree().depth)
    widest = int(np.argmax(counts))
    assert widest >= 5
    assert np.all(np.diff(counts[: widest + 1]) >= 0)
    assert counts[widest] > 10 * counts[1]


def test_cross_edges_only_point_to_deeper_genes():
    network = tree(cross=0.1)
    source, target = network.edge_index
    assert network.edge_index.shape[1] == 254 + round(0.1 * 254)
    assert np.all(network.depth[target] > network.depth[source])


def test_a_knock_down_changes_exactly_the_gene_and_its_descendants():
    network = tree(cross=0.1)
    knocked = np.array([0, 5, 40])
    effects = network.effects(knocked, propagation=0.8, knockdown_efficiency=0.8)
    for row, k in zip(effects, knocked, strict=True):
        assert set(np.flatnonzero(np.abs(row) > 1e-12).tolist()) == reachable(network, int(k))
        assert row[k] == pytest.approx(np.log(0.2))


def test_an_effect_shrinks_by_the_propagation_share_times_the_edge_weight_per_hop():
    network = tree()
    effects = network.effects(np.array([0]), propagation=0.8, knockdown_efficiency=0.8)[0]
    for source, target, sign, weight in zip(*network.edge_index, network.sign, network.weight, strict=True):
        assert effects[target] == pytest.approx(0.8 * sign * weight * effects[source])


def test_the_random_control_keeps_the_edge_count_but_has_no_hierarchy():
    network = random_network(255, 254, weight_min=0.6, weight_max=1.0, rng=np.random.default_rng(0))
    assert network.edge_index.shape[1] == 254
    assert np.sum(network.depth == 0) > 50  # many genes nobody regulates, instead of one root
    assert network.depth.max() < tree().depth.max()


@pytest.fixture
def simulated():
    config = load_config(None, PERTURBATION_TINY)
    return config, *get_system("perturbation").simulate(config.simulation)


def test_counts_are_anndata_with_a_perturbation_label_per_cell(simulated):
    config, observations, _ = simulated
    adata = observations.anndata()
    assert isinstance(adata, anndata.AnnData)
    labels = adata.obs["perturbation"]
    assert (labels == "control").sum() == config.simulation.n_control_cells
    trained = config.simulation.n_perturbations - config.simulation.n_heldout_perturbations
    assert labels.nunique() == trained + 1
    assert np.issubdtype(adata.X.dtype, np.integer) and adata.X.min() >= 0


def test_held_out_knock_downs_have_no_cells_in_the_observations(simulated):
    _, observations, truth = simulated
    held_out = set(observations.heldout_perturbations)
    assert len(held_out) == 6
    assert held_out.isdisjoint(set(observations.perturbation))
    assert held_out <= set(truth.perturbations)


def test_measured_effects_track_the_true_effects(simulated):
    _, observations, truth = simulated
    labels, measured = observations.effects()
    true = truth.effects_of(labels)
    assert np.corrcoef(measured.ravel(), true.ravel())[0, 1] > 0.8


def test_the_observed_graph_drops_true_edges_and_adds_spurious_ones(simulated):
    _, observations, truth = simulated
    true_pairs = {tuple(sorted(e)) for e in truth.edge_index.T.tolist()}
    observed = {tuple(e) for e in observations.observed_edges.T.tolist()}
    kept = len(observed & true_pairs) / len(true_pairs)
    assert 0.6 < kept < 0.95
    assert len(observed - true_pairs) == round(0.2 * len(true_pairs))


def test_real_data_load_from_an_h5ad_and_an_edge_list(simulated, tmp_path):
    config, observations, truth = simulated
    adata = observations.anndata()
    adata.write_h5ad(tmp_path / "screen.h5ad")
    with open(tmp_path / "edges.tsv", "w") as handle:
        handle.write("gene_a\tgene_b\tscore\n")
        for a, b in observations.observed_edges.T:
            handle.write(f"{observations.gene_names[a]}\t{observations.gene_names[b]}\t0.9\n")
        handle.write("NOT_MEASURED\tG0001\t0.9\n")
    section = config.simulation.model_copy(
        update={
            "source": "files",
            "h5ad_path": tmp_path / "screen.h5ad",
            "edges_path": tmp_path / "edges.tsv",
            "n_heldout_perturbations": 4,
        }
    )
    loaded, measured = load_files(section)
    assert np.array_equal(loaded.gene_names, observations.gene_names)
    assert np.array_equal(loaded.observed_edges, observations.observed_edges)
    assert set(loaded.heldout_perturbations).isdisjoint(set(loaded.perturbation))
    assert set(measured.perturbations) == set(loaded.heldout_perturbations)
    assert measured.edge_index.shape == (2, 0)
