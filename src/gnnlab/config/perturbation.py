"""Config schema of the gene-perturbation system (``system: perturbation``).

The defaults are the shipped benchmark (``configs/perturbation.yaml``): a signed regulatory tree of 255
genes with a few cross-edges, 80 knock-downs (20 held out), negative-binomial counts, and a noisy observed
graph. Every key the exploration loop may turn (learning rates, curvature, dimension, clipping) is here.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from gnnlab.config._base import Section


class PerturbationSimulation(Section):
    """How the hidden regulatory network, its knock-down effects and the count data are generated,
    or (``source: files``) which local files hold real data."""

    source: Literal["synthetic", "files"] = "synthetic"
    network: Literal["tree", "random"] = Field(
        "tree", description="Hierarchical network, or the random-DAG negative control with as many edges."
    )
    n_genes: int = Field(255, ge=3)
    max_children: int = Field(3, ge=1, description="Children per regulator drawn from 1..max_children.")
    cross_edge_fraction: NonNegativeFloat = Field(
        0.1, description="Extra regulator -> deeper-gene edges, as a share of the tree's edges."
    )
    edge_weight_min: PositiveFloat = 0.6
    edge_weight_max: PositiveFloat = 1.0
    propagation: float = Field(
        0.8, gt=0.0, lt=1.0, description="Share of a regulator's log-change passed to each target."
    )
    knockdown_efficiency: float = Field(0.8, gt=0.0, lt=1.0, description="Expression removed at the target.")
    n_perturbations: PositiveInt = Field(80, description="Knocked-down regulators (genes with targets).")
    n_heldout_perturbations: PositiveInt = Field(20, description="Perturbations never seen in training.")
    n_cells_per_perturbation: PositiveInt = 50
    n_control_cells: PositiveInt = 500
    mean_expression: PositiveFloat = Field(10.0, description="Median expected count of a gene per cell.")
    expression_spread: NonNegativeFloat = Field(0.8, description="Std of log expected count across genes.")
    library_size_spread: NonNegativeFloat = Field(0.2, description="Std of log library size across cells.")
    dispersion: PositiveFloat = Field(5.0, description="Negative-binomial r: variance = mu + mu^2 / r.")
    observed_edge_drop: float = Field(0.2, ge=0.0, lt=1.0, description="True edges missing from the graph.")
    observed_spurious_fraction: NonNegativeFloat = Field(
        0.2, description="Random edges added to the observed graph, as a share of the true edges."
    )
    h5ad_path: Path | None = Field(None, description="source=files: AnnData with obs['perturbation'].")
    edges_path: Path | None = Field(None, description="source=files: gene-interaction edge list, 2 columns.")
    perturbation_key: str = "perturbation"
    control_label: str = "control"
    seed: int = 7

    @model_validator(mode="after")
    def _consistent(self) -> "PerturbationSimulation":
        if self.edge_weight_min > self.edge_weight_max:
            raise ValueError("edge_weight_min <= edge_weight_max must hold")
        if self.n_heldout_perturbations >= self.n_perturbations:
            raise ValueError(
                f"n_heldout_perturbations ({self.n_heldout_perturbations}) must be < n_perturbations "
                f"({self.n_perturbations})"
            )
        if self.source == "files" and (self.h5ad_path is None or self.edges_path is None):
            raise ValueError("source 'files' needs h5ad_path and edges_path")
        return self


class PerturbationModel(Section):
    """A graph encoder of genes into a space of constant curvature, and a decoder that sends a knock-down
    along the observed edges with shares read off the learned geometry (:mod:`gnnlab.models.perturbation`).
    """

    geometry: Literal["poincare", "euclidean"] = "poincare"
    embedding_dim: PositiveInt = 8
    hidden_dim: PositiveInt = 32
    n_layers: PositiveInt = Field(2, description="Graph convolutions (or per-gene layers without a graph).")
    architecture: Literal["graph", "mlp"] = Field(
        "graph", description="mlp: the baseline that maps a knocked gene's features to all changes, no graph."
    )
    curvature: PositiveFloat = Field(1.0, description="c of the Poincare ball (curvature -c).")
    learn_curvature: bool = False
    decoder_hidden_dim: PositiveInt = 32
    propagation_steps: PositiveInt = Field(6, description="Hops a knock-down travels along observed edges.")
    input_clip: PositiveFloat = Field(
        10.0, description="Standardised gene features are clipped to +-input_clip before the encoder."
    )


class PerturbationTraining(Section):
    """Two optimisers: Riemannian Adam for parameters on the ball, AdamW for the rest."""

    seed: int = 0
    n_epochs: PositiveInt = 300
    batch_size: PositiveInt = Field(16, description="Training perturbations per optimiser step.")
    learning_rate: PositiveFloat = 1e-2
    learning_rate_ball: PositiveFloat | None = Field(None, description="Default: learning_rate.")
    learning_rate_curvature: PositiveFloat = 1e-2
    weight_decay: NonNegativeFloat = 0.0
    grad_clip_norm: PositiveFloat | None = Field(1.0, description="Clip the global gradient norm.")
    n_threads: PositiveInt | None = Field(None, description="torch CPU threads (default: all cores).")
    n_ensemble: PositiveInt = Field(
        1,
        description="Members of a deep ensemble, trained one after another from seeds derived from `seed` "
        "(member 0 uses `seed` itself, so 1 is the single model); the run predicts the mean of their "
        "predicted changes. One network's held-out top-20 Pearson moves by about 0.2 between "
        "initialisations, more than the geometries differ by; averaging members is meant to remove that.",
    )


class PerturbationConfig(Section):
    """A complete perturbation run."""

    system: Literal["perturbation"] = "perturbation"
    simulation: PerturbationSimulation = PerturbationSimulation()
    model: PerturbationModel = PerturbationModel()
    training: PerturbationTraining = PerturbationTraining()
