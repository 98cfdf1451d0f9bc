"""The common part of the LLM agents: prompt, proposal schema, validation with one re-ask, budget, records.

A backend implements one method, :meth:`LLMAgent._call` (a :class:`Prompt` in, a :class:`Reply` out, an
:class:`LLMError` on failure or timeout); everything that must hold whatever the model is lives here:

* The prompt is rendered deterministically from the agent workspace only (:mod:`gnnlab.explore.workspace`),
  through its reader, so the model is shown nothing the loop did not put there, and ground truth never is.
  The request lines name only the iterations, slots and roles to fill.
* The reply must be JSON matching :class:`ProposalReply` (its JSON schema is in the prompt; backends that
  can force it, as a tool call or a response format, do). Each proposal then passes the loop's own
  :func:`validate_proposal`. Rejected slots are re-asked with the reasons, up to ``llm.max_turns`` calls per
  round; a slot still without a valid proposal goes back to the loop with ``rejected`` set, and the loop
  records the reason and lets the rule agent decide it.
* ``explore.budget_usd`` is checked before every call against the store's total (so it survives
  ``--resume``); once spent, no call is made and the rule agent decides.
* Every call, failed or not, becomes an :class:`LLMCall` (prompt, reply, tokens, cost, latency, error) that
  the loop stores; nothing else is kept, so an exploration's record holds exactly what the model saw.
"""

import abc
import dataclasses
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from gnnlab.config.explore import LLM
from gnnlab.errors import ConfigError, GnnlabError
from gnnlab.explore.agents._base import Agent, Context, Proposal, Slot, validate_proposal
from gnnlab.explore.store import LLMCall
from gnnlab.explore.workspace import PLOTS, list_workspace, read_workspace


class LLMError(GnnlabError):
    """A model call failed (HTTP error, timeout, a reply of the wrong shape); the slot is re-asked."""


@dataclasses.dataclass(frozen=True)
class Prompt:
    """What a backend sends: ``system`` is the static part (instructions and protocol, cacheable), ``user``
    the workspace's current files and the request, ``images`` workspace PNGs to attach."""

    system: str
    user: str
    images: tuple[Path, ...] = ()


@dataclasses.dataclass(frozen=True)
class Reply:
    """What a backend got: the text, or the input of a forced tool call (``data``), and its usage."""

    text: str | None
    data: dict[str, Any] | None
    model: str
    input_tokens: int
    output_tokens: int


class ProposalItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iteration: int = Field(description="The iteration this proposal fills (one of those requested).")
    parent: int | None = Field(
        description="A finished node of the current block to mutate, or null for the block's root config."
    )
    mutation: dict[str, bool | int | float | str] = Field(
        description="Dotted parameter key -> new value; only the protocol's searchable keys."
    )
    strategy: str = Field(max_length=40, description="exploit, explore, principle-test, ...")
    rationale: str = Field(max_length=2000, description="The hypothesis this experiment tests.")


class ProposalReply(BaseModel):
    """The one answer format of every LLM backend."""

    model_config = ConfigDict(extra="forbid")

    proposals: list[ProposalItem]


SCHEMA: dict[str, Any] = ProposalReply.model_json_schema()

INSTRUCTIONS = """You are the agent of an automated exploration of training configurations.
Each round you propose one experiment for each requested iteration: a parent (a finished node of the
current block, or null for the block's root config) and a mutation of a few of its searchable parameters.
The loop validates every proposal (declared, non-frozen keys; typed values in range; a parent of the
current block) and runs it; an invalid proposal is re-asked once with the reason, then a rule-based agent
decides that slot. Read the protocol below, then the workspace files the user message holds.
Answer with one JSON object, nothing else, matching this JSON schema:
"""


def system_text(protocol: str) -> str:
    return INSTRUCTIONS + json.dumps(SCHEMA, sort_keys=True) + "\n\n" + protocol


def request_text(context: Context, slots: Sequence[Slot]) -> str:
    lines = [f"Block {context.block}. Propose one experiment for each iteration:"]
    lines += [f"- iteration {s.iteration}: slot {s.slot}, role {s.role}" for s in slots]
    return "\n".join(lines) + "\n"


def parse_reply(reply: Reply) -> ProposalReply:
    """The reply's proposals, or ``ValueError`` saying what is wrong with it."""
    data: Any = reply.data
    if data is None:
        text = (reply.text or "").strip()
        fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
        try:
            data = json.loads(fenced.group(1) if fenced else text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the reply is not JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        return ProposalReply.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = [f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors()[:5]]
        raise ValueError("the reply does not match the schema: " + "; ".join(errors)) from None


class LLMAgent(Agent):
    """Proposes through a language model; see the module docstring. Block ends use the default rewrite."""

    reads_workspace = True

    name: ClassVar[str]

    def __init__(self, settings: LLM, workspace: Path, budget_usd: float | None = None):
        self.settings, self.workspace, self.budget_usd = settings, Path(workspace), budget_usd
        self._calls: list[LLMCall] = []

    @abc.abstractmethod
    def _call(self, prompt: Prompt) -> Reply:
        """Send ``prompt`` to the model; raise :class:`LLMError` on failure or after ``timeout_s``."""

    def take_calls(self) -> list[LLMCall]:
        calls, self._calls = self._calls, []
        return calls

    # --- prompt -----------------------------------------------------------------------------------------
    def _read(self, name: str) -> str:
        return read_workspace(self.workspace, name).decode()

    def prompt(
        self, context: Context, slots: Sequence[Slot], retry: tuple[str, dict[int, str]] | None
    ) -> Prompt:
        """The prompt for ``slots``, from the workspace files; ``retry`` is (previous reply, reasons)."""
        names = list_workspace(self.workspace)
        texts = [n for n in names if n != "protocol.md" and not n.endswith(".png")]
        parts = [f"=== {name} ===\n{self._read(name).rstrip()}\n" for name in texts]
        parts.append("=== request ===\n" + request_text(context, slots))
        if retry is not None:
            previous, reasons = retry
            parts.append(f"=== your previous reply ===\n{previous}\n")
            parts.append(
                "=== rejected ===\n"
                + "".join(f"- iteration {i}: {why}\n" for i, why in sorted(reasons.items()))
                + "Propose again for these iterations only.\n"
            )
        images = tuple(self.workspace / n for n in PLOTS if n in names) if self.settings.images else ()
        return Prompt(system_text(self._read("protocol.md")), "\n".join(parts), images)

    # --- proposing --------------------------------------------------------------------------------------
    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        accepted: dict[int, Proposal] = {}
        reasons: dict[int, str] = {}
        pending = list(slots)
        retry: tuple[str, dict[int, str]] | None = None
        spent = context.llm_spent_usd
        budget = self.budget_usd
        for _ in range(self.settings.max_turns):
            if not pending:
                break
            if budget is not None and spent >= budget:
                reasons.update(
                    {s.iteration: f"LLM budget exhausted (${spent:.4f} of ${budget:.4f})" for s in pending}
                )
                break
            prompt = self.prompt(context, pending, retry)
            call, round_reasons, proposals = self._ask(context, pending, prompt)
            self._calls.append(call)
            spent += call.cost_usd
            accepted.update(proposals)
            reasons.update(round_reasons)
            pending = [s for s in pending if s.iteration not in accepted]
            retry = (
                call.reply or f"(no reply: {call.error})",
                {s.iteration: reasons[s.iteration] for s in pending},
            )
        return [
            accepted.get(s.iteration) or Proposal({}, rejected=f"{self.name}: {reasons[s.iteration]}")
            for s in slots
        ]

    def _ask(
        self, context: Context, slots: Sequence[Slot], prompt: Prompt
    ) -> tuple[LLMCall, dict[int, str], dict[int, Proposal]]:
        """One call: its record, the reason each rejected slot was rejected, the accepted proposals."""
        start = time.perf_counter()
        try:
            reply = self._call(prompt)
        except LLMError as exc:
            reason = f"call failed: {exc}"
            return (
                self._record(slots, prompt, None, time.perf_counter() - start, reason),
                {s.iteration: reason for s in slots},
                {},
            )
        latency = time.perf_counter() - start
        reasons: dict[int, str] = {}
        accepted: dict[int, Proposal] = {}
        try:
            items = {item.iteration: item for item in parse_reply(reply).proposals}
        except ValueError as exc:
            reasons = {s.iteration: str(exc) for s in slots}
            items = {}
        for slot in slots if not reasons else ():
            item = items.get(slot.iteration)
            if item is None:
                reasons[slot.iteration] = f"no proposal for iteration {slot.iteration}"
                continue
            proposal = Proposal(item.mutation, item.parent, item.strategy, item.rationale)
            _, reason = validate_proposal(context, proposal, slot.slot)
            if reason is None:
                accepted[slot.iteration] = proposal
            else:
                reasons[slot.iteration] = reason
        error = "; ".join(f"iteration {i}: {why}" for i, why in sorted(reasons.items())) or None
        return self._record(slots, prompt, reply, latency, error), reasons, accepted

    def _record(
        self, slots: Sequence[Slot], prompt: Prompt, reply: Reply | None, latency: float, error: str | None
    ) -> LLMCall:
        shown = {
            "system": prompt.system,
            "user": prompt.user,
            "images": [p.relative_to(self.workspace).as_posix() for p in prompt.images],
        }
        text = None
        if reply is not None:
            text = reply.text if reply.data is None else json.dumps(reply.data, sort_keys=True)
        return LLMCall(
            iteration=slots[0].iteration,
            backend=self.name,
            model=reply.model if reply is not None else self.settings.model,
            prompt=json.dumps(shown, sort_keys=True),
            reply=text,
            input_tokens=reply.input_tokens if reply is not None else 0,
            output_tokens=reply.output_tokens if reply is not None else 0,
            cost_usd=self.cost(reply) if reply is not None else 0.0,
            latency_s=latency,
            error=error,
        )

    def cost(self, reply: Reply) -> float:
        """US dollars: the replying model's price, else the configured model's, else ``default_price``."""
        prices = self.settings.prices
        price = prices.get(reply.model) or prices.get(self.settings.model) or self.settings.default_price
        return (reply.input_tokens * price.input + reply.output_tokens * price.output) / 1e6

    def image_bytes(self, path: Path) -> bytes:
        """An attached plot, read through the workspace reader like every other file."""
        return read_workspace(self.workspace, path.relative_to(self.workspace).as_posix())


def api_key(variable: str) -> str:
    """The key in environment variable ``variable`` (never from a file, never written anywhere)."""
    key = os.environ.get(variable)
    if not key:
        raise ConfigError(f"set the {variable} environment variable (the API key is read from it only)")
    return key


__all__ = [
    "INSTRUCTIONS",
    "SCHEMA",
    "LLMAgent",
    "LLMError",
    "Prompt",
    "ProposalItem",
    "ProposalReply",
    "Reply",
    "api_key",
    "parse_reply",
    "request_text",
    "system_text",
]
