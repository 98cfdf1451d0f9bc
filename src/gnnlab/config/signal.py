"""Config schema of the neural signal-propagation system (``system: signal``).

Key names follow seed 003 where they exist. The defaults are the chaotic N=100, one-type benchmark of
``configs/signal.yaml``.
"""

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from gnnlab.config._base import Section, TrainingBase

# the per-type parameter rows, in the order the simulator reads them (a, b, s, h, w)
PER_TYPE_KEYS = (
    "decay_per_type",
    "baseline_per_type",
    "self_recurrence_per_type",
    "threshold_per_type",
    "width_per_type",
)


class SignalSimulation(Section):
    """How the ground-truth recurrent network and its activity are generated."""

    n_neurons: int = Field(100, ge=2)
    n_neuron_types: PositiveInt = 1
    n_frames: int = Field(10000, ge=3)
    n_burn_in_frames: int = Field(100, ge=0, description="Frames simulated, then discarded.")
    delta_t: PositiveFloat = 0.01
    n_substeps: PositiveInt = Field(1, description="Euler substeps per saved frame.")
    connectivity_type: Literal["chaotic", "low_rank"] = "chaotic"
    connectivity_rank: PositiveInt = 20
    connectivity_filling_factor: float = Field(1.0, gt=0.0, le=1.0)
    known_support: bool = Field(True, description="Give the model the true edge list (filling < 1).")
    Dale_law: bool = False
    Dale_law_factor: float = Field(0.5, ge=0.0, le=1.0, description="Share of excitatory neurons.")
    g: NonNegativeFloat = Field(10.0, description="Gain on the recurrent input.")
    decay_per_type: tuple[NonNegativeFloat, ...] = (1.0,)
    baseline_per_type: tuple[float, ...] = (0.0,)
    self_recurrence_per_type: tuple[float, ...] = (0.0,)
    threshold_per_type: tuple[float, ...] = (0.0,)
    width_per_type: tuple[PositiveFloat, ...] = (1.0,)
    noise_model_level: NonNegativeFloat = Field(0.0, description="Diffusion std: sigma sqrt(dt) per step.")
    measurement_noise_level: NonNegativeFloat = 0.0
    external_input_type: Literal["none", "additive"] = "none"
    n_input_neurons: int = Field(0, ge=0)
    external_input_amplitude: NonNegativeFloat = 1.0
    divergence_threshold: PositiveFloat = Field(1e6, description="|u| above this counts as diverged.")
    n_runs: int = Field(2, ge=2)
    n_validation_runs: PositiveInt = 1
    seed: int = 42

    @model_validator(mode="after")
    def _consistent(self) -> "SignalSimulation":
        for key in PER_TYPE_KEYS:
            if len(getattr(self, key)) != self.n_neuron_types:
                raise ValueError(
                    f"{key} has {len(getattr(self, key))} entries but n_neuron_types = {self.n_neuron_types}"
                )
        if self.n_validation_runs >= self.n_runs:
            raise ValueError(f"n_validation_runs ({self.n_validation_runs}) must be < n_runs ({self.n_runs})")
        if self.n_input_neurons > self.n_neurons:
            raise ValueError("n_input_neurons cannot exceed n_neurons")
        if self.connectivity_type == "low_rank" and self.connectivity_rank > self.n_neurons:
            raise ValueError("connectivity_rank cannot exceed n_neurons")
        return self


class SignalTraining(TrainingBase):
    """Seed-003 parameter groups and regularisers of the signal model, and the benchmark's budget."""

    data_augmentation_loop: PositiveFloat = 20.0
    lbfgs_iterations: int = Field(30, ge=0)
    n_threads: PositiveInt | None = Field(
        1, description="One thread: ten times faster on a shared 2-core CPU."
    )
    learning_rate_W_start: NonNegativeFloat = Field(
        5e-2, description="W learns g * W_true, std ~ g / sqrt(N)."
    )
    learning_rate_start: NonNegativeFloat = 3e-3
    learning_rate_embedding_start: NonNegativeFloat = 1e-3
    coeff_W_L1: NonNegativeFloat = Field(0.0, description="L1 penalty on the edge weights.")
    coeff_edge_diff: NonNegativeFloat = Field(
        0.0,
        description="Seed 003's monotonicity penalty on g_phi; 0 only: g_phi is monotone by construction.",
    )
    coeff_edge_norm: NonNegativeFloat = Field(
        0.0, description="Seed 003's W/g_phi scale penalty; 0 only: the tanh gauge fixes the scale exactly."
    )
    noise_model_level: NonNegativeFloat = Field(
        0.0, description="Std of Gaussian noise added to the input states of each batch (augmentation)."
    )
    W_solver: Literal["projection", "gradient"] = Field(
        "projection",
        description="projection: W is solved by least squares at every step (variable projection), so the "
        "optimisers fit only f_theta, g_phi and the embeddings; gradient: W is trained like the other "
        "parameters (seed 003; needed for coeff_W_L1).",
    )
    projection_steps: int = Field(100, ge=0, description="projection: Adam steps before L-BFGS.")
    projection_batch_frames: PositiveInt = Field(
        2000, description="projection: frames per Adam step (W is re-solved on each batch)."
    )
    projection_batch_neurons: PositiveInt | None = Field(
        None,
        description="projection: target neurons (rows of W) per Adam step, drawn at random with the frames; "
        "the features of every source neuron are still used. null: all. Cuts f_theta's cost at large N.",
    )
    projection_lbfgs_frames: PositiveInt | None = Field(
        None,
        description="projection: frames (a fixed random subset) and, with projection_batch_neurons, a fixed "
        "random subset of that many target neurons for the L-BFGS loss. null: all frames.",
    )
    projection_validations: PositiveInt = Field(
        20,
        description="projection: held-out evaluations during the Adam phase (each solves W on all frames).",
    )
    ridge: NonNegativeFloat = Field(
        1e-4, description="projection: ridge on the features' mean-square Gram matrix (g_phi in (-1, 1))."
    )

    @model_validator(mode="after")
    def _l1_needs_gradient(self) -> "SignalTraining":
        if self.W_solver == "projection" and self.coeff_W_L1 > 0:
            raise ValueError("coeff_W_L1 needs W_solver: gradient (the projection solves W by ridge)")
        return self

    @model_validator(mode="after")
    def _gauge_is_structural(self) -> "SignalTraining":
        """Seed 003 fixed the W <-> g_phi ambiguity with soft penalties; this model fixes it by construction,
        so a non-zero coefficient would be a silent no-op. Refuse it instead."""
        for key in ("coeff_edge_diff", "coeff_edge_norm"):
            if getattr(self, key) != 0.0:
                raise ValueError(
                    f"{key} must be 0: g_phi is a monotone tanh saturating at +-1 by construction "
                    "(see gnnlab.models.signal), so the penalty has nothing to fix"
                )
        return self


class SignalModelConfig(Section):
    """Sizes of the signal GNN (see :mod:`gnnlab.models.signal` for the gauge)."""

    embedding_dim: int = Field(2, ge=1)
    hidden_dim: PositiveInt = 32
    n_layers: PositiveInt = 2
    activation: Literal["tanh", "silu"] = "tanh"


class SignalConfig(Section):
    """A complete signal-propagation run."""

    system: Literal["signal"] = "signal"
    simulation: SignalSimulation = SignalSimulation()
    model: SignalModelConfig = SignalModelConfig()
    training: SignalTraining = SignalTraining()
