"""Schema of the ``explore`` section: what the exploration loop may change, how it scores, and its budgets.

The section lives in the same YAML file as the system config it explores. It is validated here, like every
other section (unknown keys are errors naming the key), and then split off: runs never carry it, so a node's
``config.yaml`` is an ordinary run config that ``gnnlab run`` reproduces on its own.
"""

import math
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator, model_validator

from gnnlab.config._base import Section

SlotRole = Literal["exploit", "explore", "principle-test"]
AgentName = Literal["rule", "random", "optuna", "replay", "anthropic", "openai", "claude"]


class Parameter(Section):
    """One searchable key: its type, its range or choices, and whether the loop may touch it.

    ``frozen`` parameters are declared so that a proposal changing them is rejected with a reason (rather
    than "unknown key"), and so the protocol can list them as forbidden.
    """

    type: Literal["float", "int", "categorical", "bool"]
    low: float | None = None
    high: float | None = None
    log: bool = Field(False, description="Search (and step) in log space; needs low > 0.")
    choices: tuple[Any, ...] | None = None
    frozen: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "Parameter":
        if self.type in ("float", "int"):
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} parameter needs low and high")
            if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
                raise ValueError(f"low <= high must hold (got low={self.low}, high={self.high})")
            if self.log and self.low <= 0:
                raise ValueError(f"log scale needs low > 0 (got low={self.low})")
            if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
                raise ValueError("an int parameter needs integer low and high")
            if self.choices is not None:
                raise ValueError(f"choices are for categorical parameters, not {self.type}")
        elif self.type == "categorical":
            if not self.choices or len(self.choices) < 2:
                raise ValueError("a categorical parameter needs at least two choices")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise ValueError("categorical choices must be distinct")
        if self.type in ("categorical", "bool") and (
            self.low is not None or self.high is not None or self.log
        ):
            raise ValueError(f"low, high and log are for numeric parameters, not {self.type}")
        return self


class Target(Section):
    """Goal ``target: v``: the closer the metric to v the better, so 3.0 does not beat 1.0 when v = 1."""

    target: float


class Regime(Section):
    """A simulation variant the loop may switch to at a block end (``set`` holds dotted keys)."""

    name: str
    set: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dotted(self) -> "Regime":
        for key in self.set:
            if "." not in key:
                raise ValueError(f"regime {self.name!r}: key {key!r} must be dotted (section.key)")
        return self


class Budget(Section):
    iterations: PositiveInt = 24
    wall_minutes: PositiveFloat | None = Field(None, description="Stop proposing once this much time passed.")


class Price(Section):
    """US dollars per million tokens."""

    input: NonNegativeFloat = 0.0
    output: NonNegativeFloat = 0.0


# List prices (USD per million tokens) of a few common models when this was written. They only serve
# ``explore.budget_usd``; check them, or set ``explore.llm.prices``, before trusting a budget.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-sonnet-4-5": Price(input=3.0, output=15.0),
    "claude-haiku-4-5": Price(input=1.0, output=5.0),
    "claude-opus-4-1": Price(input=15.0, output=75.0),
    "gpt-4o": Price(input=2.5, output=10.0),
    "gpt-4o-mini": Price(input=0.15, output=0.6),
}


class LLM(Section):
    """Settings of the LLM agents (``anthropic``, ``openai``). Keys never live here: they come from the
    SDKs' environment variables only, so no file the loop writes can hold one."""

    model: str = "claude-sonnet-4-5"
    base_url: str | None = Field(
        None, description="Endpoint; overrides ANTHROPIC_BASE_URL / OPENAI_BASE_URL (a local server)."
    )
    prices: dict[str, Price] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="Per-model prices (USD per Mtoken); entries add to or override DEFAULT_PRICES.",
    )
    default_price: Price = Field(Price(), description="Price of a model missing from prices.")
    timeout_s: PositiveFloat = Field(
        120.0, description="Per HTTP request: a call takes at most (1 + max_retries) x timeout_s."
    )
    max_retries: int = Field(2, ge=0, description="The SDK's retries of a failed HTTP request.")
    max_turns: PositiveInt = Field(
        2, description="Model calls per round: the first ask plus re-asks of rejected proposals."
    )
    max_tokens: PositiveInt = 4096
    images: bool = Field(True, description="Attach the latest plots (tree.png, progress.png) as images.")
    json_schema: bool = Field(
        False, description="openai: ask for JSON-schema output (servers that support response_format)."
    )

    @field_validator("prices")
    @classmethod
    def _over_defaults(cls, prices: dict[str, Price]) -> dict[str, Price]:
        """A config names the models it prices differently; the others keep their list price."""
        return {**DEFAULT_PRICES, **prices}


class CodeRegion(Section):
    """The editable lines of ``file`` (a path inside the ``gnnlab`` package's source root, e.g.
    ``gnnlab/training/__init__.py``): strictly between the line holding ``start`` and the one holding
    ``end``."""

    file: str
    start: str
    end: str

    @field_validator("file")
    @classmethod
    def _inside_the_package(cls, file: str) -> str:
        if not file.startswith("gnnlab/") or not file.endswith(".py") or ".." in file.split("/"):
            raise ValueError(f"{file!r}: a region's file is a gnnlab/....py path inside the package")
        return file


OPTIMIZER_REGION = CodeRegion(
    file="gnnlab/training/__init__.py",
    start=">>> explore-region: optimizer",
    end="<<< explore-region: optimizer",
)


class ExploreConfig(Section):
    """The ``explore`` section. Defaults follow the seed documents (4 slots, roles, c = 1.414)."""

    metric: str = "rate_constants_R2"
    goal: Literal["maximize", "minimize"] | Target = "maximize"
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    per_slot: dict[str, tuple[Any, ...]] = Field(
        default_factory=dict, description="Keys fixed per slot: slot s always runs with value [s % len]."
    )
    n_iter_block: PositiveInt = 12
    ucb_c: NonNegativeFloat = 1.414
    ucb_form: Literal["seeds", "ucb1"] = "seeds"
    slots: PositiveInt = 4
    slot_roles: tuple[SlotRole, ...] = ("exploit", "exploit", "explore", "principle-test")
    robustness_seeds: tuple[int, ...] = Field(
        (), description="Training seeds for re-runs of a new best node; its reward becomes the mean."
    )
    regimes: tuple[Regime, ...] = ()
    budget: Budget = Budget()
    run_timeout_minutes: PositiveFloat = 30.0
    agent: AgentName = "rule"
    llm: LLM = LLM()
    budget_usd: NonNegativeFloat | None = Field(
        None, description="LLM agents: no model call once this much was spent; the rule agent takes over."
    )
    allow_code_edits: bool = Field(
        False,
        description="Agents may edit the training code inside code_regions, at a block's first round only.",
    )
    code_regions: tuple[CodeRegion, ...] = (OPTIMIZER_REGION,)
    max_repair_attempts: int = Field(
        2, ge=0, description="Repairs of a crashing code edit (fed the traceback) before it is rolled back."
    )
    seed: int = Field(0, description="Seeds the agent (rule, random, optuna); runs keep their own seeds.")
    plots: bool = Field(
        True,
        description="Runs write their figures (agents read them) and the loop draws tree.png, progress.png.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "ExploreConfig":
        for key in [*self.parameters, *self.per_slot]:
            if "." not in key:
                raise ValueError(f"parameter {key!r} must be a dotted key (section.key)")
        both = set(self.parameters) & set(self.per_slot)
        if both:
            raise ValueError(f"keys cannot be both searched and fixed per slot: {sorted(both)}")
        for key, values in self.per_slot.items():
            if not values:
                raise ValueError(f"per_slot {key!r} needs at least one value")
        if len(self.slot_roles) < 1:
            raise ValueError("slot_roles needs at least one role")
        if self.allow_code_edits and not self.code_regions:
            raise ValueError("allow_code_edits needs at least one entry in code_regions")
        if not any(not p.frozen for p in self.parameters.values()) and self.agent != "replay":
            raise ValueError("explore.parameters declares no searchable (non-frozen) key")
        return self

    def role(self, slot: int) -> SlotRole:
        """Roles repeat when there are more slots than roles."""
        return self.slot_roles[slot % len(self.slot_roles)]


__all__ = [
    "DEFAULT_PRICES",
    "LLM",
    "OPTIMIZER_REGION",
    "Budget",
    "CodeRegion",
    "ExploreConfig",
    "Parameter",
    "Price",
    "Regime",
    "Target",
]
