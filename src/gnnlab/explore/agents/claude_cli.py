"""The ``claude`` agent: the real Claude Code CLI edits the agent workspace; its config diff is the proposal.

Why a CLI and not an SDK call: Claude Code brings its own tool loop (Read, Edit), so the agent works the way
the seeds describe — read the workspace, edit the config, append an ``## Iter N:`` entry to memory — and
gnnlab only has to read what changed. The edited file is never trusted: the config *diff* (dotted keys whose
value changed) becomes a :class:`Proposal` that the loop validates like any other.

Isolation: the CLI runs with ``cwd`` = the workspace, only Read and Edit allowed and every other tool
(Bash, Write, web access, sub-agents) disallowed, in its own process group with a timeout that kills the
whole group (the CLI spawns helpers). ``is_error: true`` in the JSON result is a failure whatever
``subtype`` says (a turn-limit stop reports ``subtype`` other than "success" but an API error can report
"success"). A failure falls back to the rule agent for that slot, with the reason in the rationale.

To merge with the shared LLM layer (agents/llm.py, workspace.py): the workspace population here is the
minimal allow-list (:data:`WORKSPACE_FILES`) and calls are kept in :attr:`ClaudeAgent.calls` for the store's
``llm_calls`` table; both are to be pointed at that layer once it lands.
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gnnlab.errors import GnnlabError
from gnnlab.explore.agents._base import Agent, Context, Proposal, Slot
from gnnlab.explore.agents.rule import RuleAgent

# the only files the CLI sees: never ground truth, never the store
WORKSPACE_FILES = ("config.yaml", "protocol.md", "memory.md", "ucb_scores.txt")
ALLOWED_TOOLS = ("Read", "Edit")
DISALLOWED_TOOLS = ("Bash", "Write", "NotebookEdit", "WebFetch", "WebSearch", "Task", "Glob", "Grep")
# the repository's pinned install (tools/claude, `make test` runs npm ci there)
LOCAL_BIN = Path(__file__).resolve().parents[4] / "tools" / "claude" / "node_modules" / ".bin" / "claude"


class ClaudeError(GnnlabError):
    """The CLI failed: not found, timed out, bad JSON, or reported ``is_error``."""


@dataclasses.dataclass(frozen=True)
class CliResult:
    """What one CLI run reports: its final text, cost and token usage (for the llm_calls record)."""

    text: str
    cost_usd: float
    usage: dict[str, Any]
    num_turns: int


def find_claude_bin(configured: str | None = None) -> str:
    """The CLI to run: the configured path, else ``GNNLAB_CLAUDE_BIN``, else the pinned local install,
    else ``claude`` on PATH — so tests use the pinned version while users may point at their own."""
    for candidate in (configured, os.environ.get("GNNLAB_CLAUDE_BIN")):
        if candidate:
            return candidate
    if LOCAL_BIN.exists():
        return str(LOCAL_BIN)
    found = shutil.which("claude")
    if found is None:
        raise ClaudeError("Claude Code CLI not found: set GNNLAB_CLAUDE_BIN or run `make test` (npm ci)")
    return found


def run_claude(
    binary: str,
    prompt: str,
    cwd: Path,
    *,
    model: str,
    max_turns: int,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``claude -p`` once in ``cwd``; raise :class:`ClaudeError` on any failure."""
    command = [
        binary, "-p", prompt, "--output-format", "json", "--model", model, "--max-turns", str(max_turns),
        "--allowedTools", *ALLOWED_TOOLS, "--disallowedTools", *DISALLOWED_TOOLS,
        "--restricted",  # without it, Read opens any path: the dataset cache (ground truth) included
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(os.environ if env is None else env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout can kill the CLI's children too
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ClaudeError(f"claude timed out after {timeout_s:g} s (process group killed)") from None
    try:
        result = json.loads(stdout)
    except ValueError:
        raise ClaudeError(
            f"claude exited {process.returncode} without a JSON result: {stderr[-500:]}"
        ) from None
    if result.get("is_error") or process.returncode != 0:
        raise ClaudeError(f"claude failed ({result.get('subtype')}): {str(result.get('result'))[:500]}")
    return CliResult(
        text=str(result.get("result", "")),
        cost_usd=float(result.get("total_cost_usd") or 0.0),
        usage=dict(result.get("usage") or {}),
        num_turns=int(result.get("num_turns") or 0),
    )


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: configs compared key by key."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def config_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The dotted keys whose value the agent changed or added, with the new values (removals are ignored:
    a proposal can only set values, and the loop's validation decides whether they are allowed)."""
    old, new = flatten(before), flatten(after)
    return {k: v for k, v in new.items() if k not in old or old[k] != v}


def prompt_text(slot: Slot, parent: int | None) -> str:
    """The instruction; everything else the agent learns by reading the workspace files."""
    base = "the block's root config" if parent is None else f"node {parent}, the block's best so far"
    return (
        f"You are exploring training configurations (iteration {slot.iteration}, slot {slot.slot}, "
        f"role {slot.role}). Read protocol.md, memory.md and ucb_scores.txt. config.yaml holds {base}. "
        "Edit config.yaml to set the values of the next experiment (only parameters the protocol allows), "
        f"then append an '## Iter {slot.iteration}:' entry with your hypothesis to memory.md."
    )


class ClaudeAgent(Agent):
    """One CLI run per slot; the config diff is the proposal, a failure hands the slot to the rule agent."""

    name = "claude"

    def __init__(
        self,
        workspace: Path | None = None,
        *,
        model: str = "claude-sonnet-4-5",
        max_turns: int = 12,
        timeout_s: float = 600.0,
        claude_bin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workspace = (
            Path(tempfile.mkdtemp(prefix="gnnlab-workspace-")) if workspace is None else workspace
        )
        self.model, self.max_turns, self.timeout_s = model, max_turns, timeout_s
        self.claude_bin, self.env = claude_bin, env
        self.calls: list[CliResult] = []
        self._rule = RuleAgent()

    def _populate(self, context: Context, config: Mapping[str, Any]) -> None:
        """Write the allow-listed files; memory.md persists across calls (the agent's own notes)."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        (self.workspace / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=True))
        (self.workspace / "protocol.md").write_text(
            f"# Protocol\n\nMetric: {context.spec.metric}\n\nParameters you may change: "
            f"{', '.join(sorted(k for k, p in context.spec.parameters.items() if not p.frozen))}\n"
        )
        (self.workspace / "ucb_scores.txt").write_text(
            "".join(f"{dataclasses.astuple(entry)}\n" for entry in context.ucb)
        )
        memory = self.workspace / "memory.md"
        if not memory.exists():
            memory.write_text("# Memory\n")

    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        best = context.best()
        parent = best.id if best is not None else None
        fallback = self._rule.propose(context, slots)
        proposals = []
        for slot, rule_proposal in zip(slots, fallback, strict=True):
            before = context.config_of(parent)
            self._populate(context, before)
            try:
                result = run_claude(
                    find_claude_bin(self.claude_bin),
                    prompt_text(slot, parent),
                    self.workspace,
                    model=self.model,
                    max_turns=self.max_turns,
                    timeout_s=self.timeout_s,
                    env=self.env,
                )
                after = yaml.safe_load((self.workspace / "config.yaml").read_text())
                if not isinstance(after, dict):
                    raise ClaudeError("config.yaml is no longer a mapping")
            except (ClaudeError, OSError, yaml.YAMLError) as error:
                proposals.append(dataclasses.replace(rule_proposal, rationale=f"claude failed: {error}"))
                continue
            self.calls.append(result)
            proposals.append(
                Proposal(config_diff(before, after), parent=parent, strategy="claude", rationale=result.text)
            )
        return proposals


__all__ = ["ClaudeAgent", "ClaudeError", "CliResult", "config_diff", "find_claude_bin", "run_claude"]
