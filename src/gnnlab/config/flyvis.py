"""Config schema of the fly visual system (``system: flyvis``): the fib25-fib19 connectome on a hexagonal
lattice, graded ReLU dynamics and procedural visual input (issue 11, seed 002).

Defaults are extent 8 (13,741 cells, 434,112 synapse edges) at process noise 0.05, the issue's benchmark.
"""

import csv
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from gnnlab.config._base import Section, TrainingBase

StimulusKind = Literal["grating", "flash", "edge", "flow", "noise"]


class FlyVisSimulation(Section):
    """How per-type parameters, synaptic strengths, stimuli and activity are generated."""

    extent: int = Field(8, ge=0, le=15, description="Lattice radius in columns (8: 13,741 cells).")
    n_frames: int = Field(1000, ge=3, description="Saved frames per run.")
    n_burn_in_frames: int = Field(50, ge=0, description="Frames at grey input, simulated, then discarded.")
    initial_state_std: NonNegativeFloat = Field(
        0.0,
        description="Each training/validation run starts from the grey-adapted state plus N(0, this^2) per "
        "cell (a pre-pulse of current): the transients take every cell through 0, which ReLU needs to "
        "tell an autapse from the leak. The test run starts from the grey-adapted state.",
    )
    delta_t: PositiveFloat = Field(0.02, description="Seconds between saved frames.")
    n_substeps: PositiveInt = Field(
        1,
        description="Exponential-Euler substeps per frame; stable for any tau. 1: the frame map is exactly "
        "the one the model's gauge inverts; > 1 biases one-frame regression (see the simulator).",
    )
    tau_range: tuple[PositiveFloat, PositiveFloat] = Field(
        (0.02, 0.3), description="Per-type time constants (s), drawn uniformly (published model's range)."
    )
    V_rest_range: tuple[float, float] = Field((0.0, 0.8), description="Per-type resting potentials.")
    cell_parameters_file: Path | None = Field(
        None,
        description="A CSV with the header type,tau,V_rest and one row per cell type (flyvis names): these "
        "values instead of draws from tau_range and V_rest_range. It is read into cell_parameters (unless "
        "those are given), so the dataset's cache key follows the file's content and a run's recorded "
        "config reproduces without the file.",
    )
    cell_parameters: dict[str, tuple[PositiveFloat, float]] | None = Field(
        None, description="type -> (tau, V_rest): from cell_parameters_file, or written inline."
    )
    syn_strength_range: tuple[PositiveFloat, PositiveFloat] = Field(
        (0.25, 4.0), description="Per-edge-type strength, log-uniform, before the global scaling."
    )
    W_spectral_radius: float = Field(
        0.9,
        gt=0.0,
        lt=1.0,
        description="W is scaled so the Perron root of |W| is this: < 1 makes the ReLU network stable "
        "whatever the input.",
    )
    stimulus_kinds: tuple[StimulusKind, ...] = Field(
        ("grating", "flash", "edge"), min_length=1, description="Training stimuli, cycled per segment."
    )
    test_stimulus_kind: StimulusKind = Field("flow", description="Held out: only in the test run.")
    stimulus_segment_frames: PositiveInt = Field(25, description="Frames per stimulus segment.")
    stimulus_contrast: NonNegativeFloat = Field(1.0, description="Photoreceptor input spans +-contrast.")
    noise_model_level: NonNegativeFloat = Field(0.05, description="Diffusion std: sigma sqrt(h) per substep.")
    measurement_noise_level: NonNegativeFloat = 0.0
    divergence_threshold: PositiveFloat = Field(1e3, description="|v| above this counts as diverged.")
    n_runs: int = Field(
        3, ge=2, description="Runs with training stimuli; the last n_validation_runs held out."
    )
    n_validation_runs: PositiveInt = 1
    n_test_frames: int = Field(500, ge=2, description="Frames of the held-out-stimulus test run.")
    seed: int = 42

    @model_validator(mode="before")
    @classmethod
    def _read_cell_parameters(cls, data: Any) -> Any:
        # a run's recorded config already holds the values: it reproduces without the file, and the same
        # even if the file was edited since
        if not isinstance(data, dict) or data.get("cell_parameters_file") is None:
            return data
        if data.get("cell_parameters") is not None:
            return data
        path = Path(data["cell_parameters_file"])
        try:
            rows = list(csv.DictReader(path.read_text().splitlines()))
            table = {row["type"]: (float(row["tau"]), float(row["V_rest"])) for row in rows}
        except OSError as error:
            raise ValueError(f"cell_parameters_file {path}: {error.strerror}") from None
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"cell_parameters_file {path}: expected the header type,tau,V_rest and numbers in every row"
            ) from None
        return {**data, "cell_parameters": table}

    @model_validator(mode="after")
    def _consistent(self) -> "FlyVisSimulation":
        for key in ("tau_range", "V_rest_range", "syn_strength_range"):
            low, high = getattr(self, key)
            if low > high:
                raise ValueError(f"{key} must be (low, high) with low <= high")
        if self.test_stimulus_kind in self.stimulus_kinds:
            raise ValueError("test_stimulus_kind must not be one of stimulus_kinds (it is held out)")
        if self.n_validation_runs >= self.n_runs:
            raise ValueError(f"n_validation_runs ({self.n_validation_runs}) must be < n_runs ({self.n_runs})")
        return self


class FlyVisModelConfig(Section):
    """Sizes of the flyvis GNN (see :mod:`gnnlab.models.flyvis`)."""

    embedding_dim: int = Field(2, ge=1)
    hidden_dim: PositiveInt = 32
    n_layers: PositiveInt = 2
    activation: Literal["tanh", "silu"] = "tanh"


class FlyVisTraining(TrainingBase):
    """Variable projection on the connectome's edges (W and the input gains solved by least squares)."""

    W_solver: Literal["projection", "gradient"] = Field(
        "projection",
        description="projection: per-neuron least squares for W and the input gain at every step "
        "(training/flyvis.py); gradient: trained with the rest by the shared dynamics trainer.",
    )
    projection_steps: int = Field(100, ge=0, description="projection: Adam steps before L-BFGS.")
    projection_batch_frames: PositiveInt = Field(1000, description="projection: frames per Adam step.")
    projection_validations: PositiveInt = Field(
        20,
        description="projection: held-out evaluations during the Adam phase (each solves W on all frames).",
    )
    ridge: NonNegativeFloat = Field(
        1e-4, description="projection: relative ridge, a share of each centred column's variance."
    )
    data_augmentation_loop: PositiveFloat = 20.0
    lbfgs_iterations: int = Field(30, ge=0)
    n_threads: PositiveInt | None = Field(1, description="One thread: faster on a shared 2-core CPU.")
    learning_rate_W_start: NonNegativeFloat = Field(1e-2, description="gradient solver only.")
    learning_rate_start: NonNegativeFloat = 3e-3
    learning_rate_embedding_start: NonNegativeFloat = 1e-3


class FlyVisConfig(Section):
    """A complete flyvis run."""

    system: Literal["flyvis"] = "flyvis"
    simulation: FlyVisSimulation = FlyVisSimulation()
    model: FlyVisModelConfig = FlyVisModelConfig()
    training: FlyVisTraining = FlyVisTraining()
