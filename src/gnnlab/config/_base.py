"""Base classes shared by every system's config sections.

Sections are frozen and forbid unknown keys, so a typo in a YAML file is an error, never a silent default.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt


class Section(BaseModel):
    """A config section: immutable, and strict about the keys it accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TrainingBase(Section):
    """Training keys every system shares; a system's training section extends this with its own
    parameter groups and regularisers."""

    seed: int = Field(0, description="Seeds parameter initialisation and mini-batch sampling.")
    n_epochs: PositiveInt = 1
    batch_size: PositiveInt = Field(256, description="Frames per optimiser step (vectorised, no loop).")
    data_augmentation_loop: PositiveFloat = Field(
        200.0,
        description="Passes over the training frames per epoch: steps = ceil(frames * loop / batch_size).",
    )
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    lr_warmup_steps: int = Field(0, ge=0)
    grad_clip_norm: PositiveFloat | None = Field(None, description="Clip the global gradient norm.")
    loss_normalisation: Literal["per_node", "none"] = Field(
        "per_node", description="Divide each node's squared error by the variance of its targets."
    )
    lbfgs_iterations: int = Field(
        600, ge=0, description="Full-batch L-BFGS iterations after the Adam phase (0 turns it off)."
    )
    lbfgs_preconditioner: Literal["none", "gauss_newton"] = Field(
        "gauss_newton",
        description="gauss_newton: after lbfgs_curvature_every unscaled iterations, L-BFGS steps in "
        "parameters rescaled by the loss's Gauss-Newton diagonal, read afresh after 1, 2, 4, ... times as "
        "many more; a stalled run ends it. For losses whose parameters differ in curvature by decades, as "
        "rate constants on empty and full pools do (metabolism; trainers without a curvature reading, "
        "signal's and flyvis', run plain L-BFGS whatever this says).",
    )
    lbfgs_curvature_every: PositiveInt = Field(
        100, description="L-BFGS iterations before the first reading of the curvature (lbfgs_preconditioner)."
    )
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    n_threads: PositiveInt | None = Field(None, description="torch CPU threads (default: all cores).")
