"""Config schema of the metabolic-network system (``system: metabolism``).

Key names follow the seed documents where they exist. The defaults are the shipped oscillatory
benchmark (``configs/metabolism.yaml``): 100 metabolites in two types, 256 autocatalytic reactions.
"""

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from gnnlab.config._base import Section, TrainingBase


class MetabolismSimulation(Section):
    """How the ground-truth network and its trajectories are generated."""

    n_metabolites: PositiveInt = 100
    n_metabolite_types: PositiveInt = 2
    n_reactions: PositiveInt = 256
    cycle_fraction: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of reactions in autocatalytic cycles."
    )
    cycle_length: int = Field(3, ge=2)
    max_metabolites_per_reaction: int = Field(
        3, ge=1, description="Substrates (and products) per random reaction."
    )
    log_k_min: float = -2.0
    log_k_max: float = -1.0
    homeostatic_lambda_per_type: tuple[NonNegativeFloat, ...] = (0.001, 0.002)
    homeostatic_baseline_per_type: tuple[float, ...] = (4.0, 6.0)
    n_frames: int = Field(2880, ge=3)
    delta_t: PositiveFloat = Field(0.1, description="Time between observed frames.")
    integrator: Literal["euler", "rk4", "lsoda"] = Field(
        "euler",
        description="euler: flux-limited explicit Euler; rk4: classic Runge-Kutta; lsoda: scipy's "
        "stiff/non-stiff switching solver, for networks with fast random reactions.",
    )
    n_substeps: PositiveInt = Field(
        1, description="Integrator steps per observed frame (euler, rk4); the observation grid stays delta_t."
    )
    max_limited_fraction: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="euler: the largest share of (step, metabolite) pairs whose outflow may be flux-limited; "
        "above it the step is too long for the kinetics and the simulation stops as diverged (the shipped "
        "benchmark limits 0.07 %, a half-random network at delta_t 0.1 2.2 %).",
    )
    divergence_bound: PositiveFloat = Field(
        1e6, description="A concentration above this (or non-finite) stops the simulation as diverged."
    )
    concentration_min: NonNegativeFloat = 1.0
    concentration_max: PositiveFloat = 9.0
    n_runs: PositiveInt = Field(2, description="Trajectories from independent initial concentrations.")
    n_validation_runs: PositiveInt = Field(1, description="Trailing runs held out of training.")
    noise_model_level: NonNegativeFloat = Field(
        0.0, description="Process-noise diffusion sigma: each substep of length h adds sigma*sqrt(h)*N(0, 1)."
    )
    measurement_noise_level: NonNegativeFloat = Field(
        0.0, description="Observation noise: its std (absolute) or coefficient of variation (relative)."
    )
    measurement_noise_type: Literal["absolute", "relative"] = Field(
        "absolute",
        description="absolute: c + level*N(0, 1), censored at 0; relative: c times a mean-one log-normal "
        "factor whose coefficient of variation is the level (errors proportional to c, as in metabolomics).",
    )
    external_input_type: Literal["none", "sine"] = "none"
    n_input_metabolites: int = Field(0, ge=0)
    external_input_amplitude: NonNegativeFloat = 0.0
    external_input_period: PositiveFloat = Field(
        100.0, description="Period of the sine input, in time units."
    )
    seed: int = 42

    @model_validator(mode="after")
    def _consistent(self) -> "MetabolismSimulation":
        n_types = self.n_metabolite_types
        for key in ("homeostatic_lambda_per_type", "homeostatic_baseline_per_type"):
            if len(getattr(self, key)) != n_types:
                raise ValueError(
                    f"{key} has {len(getattr(self, key))} entries but n_metabolite_types = {n_types}"
                )
        if self.log_k_min > self.log_k_max:
            raise ValueError(f"log_k_min <= log_k_max must hold (got {self.log_k_min} > {self.log_k_max})")
        if self.concentration_min > self.concentration_max:
            raise ValueError("concentration_min <= concentration_max must hold")
        if self.n_validation_runs >= self.n_runs:
            raise ValueError(f"n_validation_runs ({self.n_validation_runs}) must be < n_runs ({self.n_runs})")
        if self.n_input_metabolites > self.n_metabolites:
            raise ValueError("n_input_metabolites cannot exceed n_metabolites")
        if self.cycle_fraction > 0 and self.n_metabolites < self.cycle_length:
            raise ValueError("cycle_length cannot exceed n_metabolites")
        if self.integrator == "lsoda" and self.noise_model_level > 0:
            raise ValueError("process noise needs a fixed-step integrator (euler or rk4), not lsoda")
        return self


class MetabolismModel(Section):
    r"""The GNN that learns the vector field.

    dc_i/dt = MLP_node(c_i, a_i) + sum_j S_ij k_j prod_{k in sub(j)} g(c_k, r_kj), with
    log g(c, s) = s [H(ln c, s) - H(0, s)] and H = linear + MLP: g(1, s) = 1 fixes the scale between g and
    k, g >= 0 always, and mass action (g = c^s) is exactly representable.
    """

    embedding_dim: int = Field(2, ge=1)
    hidden_dim_sub: PositiveInt = 16
    n_layers_sub: PositiveInt = 2
    hidden_dim_node: PositiveInt = 16
    n_layers_node: PositiveInt = 2
    activation: Literal["tanh", "silu"] = Field(
        "silu", description="MLP non-linearity; SiLU matched tanh's accuracy on the benchmark, and is faster."
    )
    substrate_input: Literal["log_concentration", "concentration"] = Field(
        "log_concentration",
        description="What H reads: ln c (mass action exact, decades evened out) or raw c (an ablation).",
    )
    log_k_init: float = Field(-1.0, description="Initial log10 k of every reaction.")


class MetabolismTraining(TrainingBase):
    """Parameter groups and regularisers of the metabolism model."""

    learning_rate_k: NonNegativeFloat = 2e-2
    learning_rate_sub: NonNegativeFloat = 3e-3
    learning_rate_node: NonNegativeFloat = 1e-3
    learning_rate_embedding: NonNegativeFloat = 1e-3
    coeff_MLP_sub_diff: NonNegativeFloat = Field(
        0.0, description="Penalty on decreasing g(c) (monotonicity)."
    )
    coeff_MLP_node_L1: NonNegativeFloat = Field(0.0, description="L1 penalty on MLP_node outputs.")
    objective: Literal["auto", "derivative", "trajectory", "smoothed_derivative"] = Field(
        "auto",
        description="derivative: regress forward differences; trajectory: multiple shooting on the "
        "readings; smoothed_derivative: Savitzky-Golay targets; auto: derivative on clean readings, "
        "smoothed_derivative under weak absolute noise, trajectory under relative or strong noise.",
    )
    window: PositiveInt = Field(10, description="trajectory: observation intervals per shooting window.")
    rollout_substeps: PositiveInt = Field(1, description="trajectory: Euler steps of the model per interval.")
    fit_window_starts: bool = Field(
        True, description="trajectory: fit each window's start state instead of trusting its noisy reading."
    )
    learning_rate_start: NonNegativeFloat = Field(
        1e-2, description="trajectory: Adam rate of the starts (fitted as ln c, so a relative step)."
    )
    error_model: Literal["auto", "absolute", "relative"] = Field(
        "auto",
        description="trajectory: how reading errors scale. absolute: one std at every level, squared error "
        "of c; relative: proportional to c, squared error of ln(c + log_offset); auto: read from the data.",
    )
    rate_prior: bool = Field(
        True,
        description="trajectory: a Gaussian prior on log10 k, its width estimated from the k fitted so far "
        "(empirical Bayes): k the readings leave free move to the network's scale instead of wandering.",
    )
    log_offset: PositiveFloat = Field(
        0.01,
        description="trajectory, relative errors: below this concentration an error counts as absolute "
        "(a model's Euler step cannot follow an emptying pool to a few per cent).",
    )
    smoothing_window: int = Field(
        11, ge=5, description="smoothed_derivative: Savitzky-Golay window (frames, cubic fit)."
    )

    # --- phase 2: homeostasis recovery (seed 001; issue 8). Off by default: the benchmark is phase 1 alone.
    homeostasis_training: bool = Field(
        False, description="After phase 1, fit MLP_node and the embeddings a_i to what the reactions leave."
    )
    skip_phase1: bool = Field(False, description="Start phase 2 from the trained model in phase1_run.")
    phase1_run: str | None = Field(
        None, description="skip_phase1: run directory of a finished phase-1 run of the same simulation/model."
    )
    freeze_stoichiometry: bool = Field(
        True,
        description="Phase 2 leaves k and g untouched (bit for bit); false trains them at phase-1 rates "
        "under the residual and rollout objectives (the regulation objective's loss does not involve them).",
    )
    homeostasis_objective: Literal["regulation", "residual", "rollout"] = Field(
        "regulation",
        description="regulation: MLP_node regresses each metabolite's estimated regulation line (its "
        "group's, see homeostasis_grouping) on the observed concentrations; residual (strategy 1 as seed 001 "
        "writes it): MLP_node regresses dc/dt - u minus the frozen reaction part, frame by frame; rollout: "
        "homeostasis_time_step Euler steps of the whole model, back-propagated through time.",
    )
    homeostasis_init: Literal["regression", "keep"] = Field(
        "regression",
        description="regression: a_i starts as the robustly standardised slope and offset of a "
        "per-metabolite linear fit of the residual (observations only), so metabolites regulated alike "
        "start together; keep: phase 1's embeddings.",
    )
    homeostasis_reaction_correction: bool = Field(
        True,
        description="regression: fit the lines jointly with one rate correction per reaction, so the share "
        "of the residual that phase 1's rate errors explain is not read as regulation (k itself stays "
        "frozen). Phase 1 fits the reactions while MLP_node cannot yet tell types apart, so its k partly "
        "absorbs the homeostatic term; without this the slopes inherit that bias.",
    )
    homeostasis_ridge: float = Field(
        1e-6, gt=0.0, le=1.0, description="reaction correction: ridge on the standardised normal equations."
    )
    homeostasis_grouping: Literal["mean_shift", "none"] = Field(
        "mean_shift",
        description="regression: mean_shift groups the metabolites' fitted (slope, offset) by mean shift "
        "(no labels, no number of groups given); a group below homeostasis_min_group_fraction joins the "
        "nearest larger one. Each group's median line is its members' regulation and their embeddings are "
        "drawn to its centre (deviations capped at 2 within-group MADs); none: every metabolite keeps its "
        "own line and embedding.",
    )
    homeostasis_min_group_fraction: float = Field(
        0.1, ge=0.0, le=0.5, description="Smallest share of the metabolites that forms a group of its own."
    )
    homeostasis_node_init: Literal["fresh", "kaiming", "keep"] = Field(
        "fresh",
        description="MLP_node at the start of phase 2: fresh (zero output, seeded), kaiming (Kaiming-normal "
        "hidden layers, zero output) or keep (phase 1's).",
    )
    learning_rate_node_homeostasis: float = Field(1e-2, gt=0.0, le=1.0)
    learning_rate_embedding_homeostasis: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Adam rate of a_i in phase 2. 0 keeps the regression embeddings, which already encode "
        "the regulation (training them on the regulation objective only spreads the groups: cluster accuracy "
        "1.00 -> 0.91 on one 3-type seed).",
    )
    homeostasis_time_step: int = Field(
        1, ge=1, le=256, description="rollout: Euler steps per window (BPTT length)."
    )
    homeostasis_data_augmentation_loop: float = Field(
        20.0,
        gt=0.0,
        le=5000.0,
        description="Phase 2's data_augmentation_loop: steps = ceil(frames * loop / homeostasis_batch_size).",
    )
    homeostasis_batch_size: int = Field(
        64, ge=1, le=4096, description="Phase 2's batch_size: frames (or rollout windows) per step."
    )
    homeostasis_lbfgs_iterations: int = Field(
        0,
        ge=0,
        le=5000,
        description="regulation/residual: full-batch L-BFGS iterations on MLP_node after Adam (the "
        "embeddings stay put). Off by default: at these loss scales (squared errors ~1e-10) 200 iterations "
        "moved the bench's ratios by at most 0.02, with no consistent gain, and cost ~25 s.",
    )
    homeostasis_lr_schedule: Literal["constant", "cosine"] = Field(
        "cosine", description="Strategy 5: phase-2 rate schedule after the warm-up."
    )
    homeostasis_lr_warmup_steps: int = Field(
        0, ge=0, le=100000, description="Strategy 5: linear warm-up steps of the phase-2 rates."
    )
    homeostasis_amplification: float = Field(
        1.0,
        ge=1.0,
        le=1000.0,
        description="Strategy 2: MLP_node's output is multiplied by this in the dynamics, then brought "
        "back linearly to 1x over the first homeostasis_amplification_decay of the steps.",
    )
    homeostasis_amplification_decay: float = Field(0.5, gt=0.0, le=1.0)
    coeff_embedding_cluster: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="Strategy 3: pulls together embeddings of metabolites whose learned MLP_node response "
        "curves are similar (weights from the model's outputs only, never from types).",
    )
    homeostasis_time_step_curriculum: bool = Field(
        False,
        description="Strategy 4 (rollout): the first half of the steps use homeostasis_time_step, the "
        "second half half of it.",
    )
    homeostasis_rollout_lengths: tuple[int, ...] = Field(
        (),
        description="Strategy 6 (rollout): each step draws its rollout length from these (empty: fixed "
        "homeostasis_time_step).",
    )
    homeostasis_gradient_accumulation: int = Field(
        1, ge=1, le=64, description="Strategy 7: batches whose gradients are summed per optimiser step."
    )
    homeostasis_stop_gradient: bool = Field(
        False,
        description="Strategy 8 (rollout): the reaction part reads detached states, so MLP_node's gradient "
        "flows only through its own path, not back through the reaction Jacobian.",
    )
    coeff_homeostasis_offset: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="Offset penalty: mean MLP_node(0, a_i)^2 (suppresses constant-output solutions; biases "
        "the recovered offsets towards 0).",
    )
    homeostasis_grad_clip_norm: float | None = Field(
        None, gt=0.0, description="Clip the phase-2 gradient norm (long BPTT rollouts)."
    )

    @model_validator(mode="after")
    def _phase2_consistent(self) -> "MetabolismTraining":
        if self.skip_phase1 and not self.homeostasis_training:
            raise ValueError("skip_phase1 needs homeostasis_training: true (otherwise nothing would train)")
        if self.skip_phase1 and not self.phase1_run:
            raise ValueError("skip_phase1 needs phase1_run: <run directory of the phase-1 run>")
        if any(length < 1 for length in self.homeostasis_rollout_lengths):
            raise ValueError(
                f"homeostasis_rollout_lengths must be >= 1 (got {self.homeostasis_rollout_lengths})"
            )
        return self


class MetabolismConfig(Section):
    """A complete metabolism run."""

    system: Literal["metabolism"] = "metabolism"
    simulation: MetabolismSimulation = MetabolismSimulation()
    model: MetabolismModel = MetabolismModel()
    training: MetabolismTraining = MetabolismTraining()
