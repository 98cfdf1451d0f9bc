"""The ``claude`` agent: the real Claude Code CLI edits the agent workspace; its config diff is the proposal.

Why a CLI and not an SDK call: Claude Code brings its own tool loop (Read, Edit), so the agent works the way
the seeds describe — read the workspace, edit the config, append an ``## Iter N:`` entry to memory — and
gnnlab only has to read what changed. The edited file is never trusted: the config *diff* (dotted keys whose
value changed) becomes a :class:`Proposal` that the loop validates like any other. On a code-edit round the
workspace also holds ``code/gnnlab/...`` (the editable training files); what the CLI changed there becomes
the proposal's ``code``, which the loop pre-flights; a crash brings the CLI back with the traceback
(:meth:`ClaudeAgent.repair`).

Isolation: the CLI runs with ``cwd`` = ``DIR/workspace`` (which the loop writes from its allow-list,
:mod:`gnnlab.explore.workspace`), ``--restricted`` file tools, only Read and Edit allowed and every other
tool (Bash, Write, web access, sub-agents) disallowed, in its own process group with a timeout that kills
the whole group (the CLI spawns helpers). ``is_error: true`` in the JSON result is a failure whatever
``subtype`` says (a turn-limit stop reports ``subtype`` other than "success" but an API error can report
"success"). An edit the loop would reject is sent back once with the reason; a failure, a second rejection
or a spent ``explore.budget_usd`` hands the slot to the rule agent (the loop logs it as a rejection). Every
CLI run is an :class:`LLMCall` for the store (cost and tokens as the CLI reports them).
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gnnlab.errors import GnnlabError
from gnnlab.explore.agents._base import Agent, Context, Proposal, Slot, validate_proposal
from gnnlab.explore.store import LLMCall, Node

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


def _read_config(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The config the CLI left, or why it is unusable (one line naming the file)."""
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        return None, f"config.yaml is not valid YAML: {str(error).splitlines()[0]}"
    except OSError as error:
        return None, f"config.yaml cannot be read: {error}"
    if not isinstance(config, dict):
        return None, "config.yaml is no longer a mapping"
    return config, None


def prompt_text(slot: Slot, parent: int | None, code: bool) -> str:
    """The instruction; everything else the agent learns by reading the workspace files."""
    base = "the block's root config" if parent is None else f"node {parent}, the block's best so far"
    edit = (
        " This is a block boundary: you may also edit the training code under code/, only between its "
        "'explore-region' marker lines."
        if code
        else ""
    )
    return (
        f"You are exploring training configurations (iteration {slot.iteration}, slot {slot.slot}, "
        f"role {slot.role}). Read protocol.md, memory.md and ucb_scores.txt. config.yaml holds {base}. "
        "Edit config.yaml to set the values of the next experiment (only parameters the protocol allows), "
        f"then append an '## Iter {slot.iteration}:' entry with your hypothesis to memory.md.{edit}"
    )


def repair_text(node: Node, traceback: str) -> str:
    return (
        f"The training code you edited for iteration {node.id} crashed. The end of its traceback:\n"
        f"{traceback[-3000:]}\nFix the code under code/ (only between the 'explore-region' marker lines) "
        "so that it runs, keeping your hypothesis."
    )


class ClaudeAgent(Agent):
    """One CLI run per slot (and per repair); the config and code diffs are the proposal."""

    name = "claude"
    reads_workspace = True

    def __init__(
        self,
        workspace: Path,
        *,
        model: str = "claude-sonnet-4-5",
        max_turns: int = 12,
        timeout_s: float = 600.0,
        budget_usd: float | None = None,
        claude_bin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.model, self.max_turns, self.timeout_s, self.budget_usd = model, max_turns, timeout_s, budget_usd
        self.claude_bin, self.env = claude_bin, env
        self.calls: list[LLMCall] = []
        self._spent = 0.0  # this round's calls, not yet in the store

    def _write(self, config: Mapping[str, Any], code: Mapping[str, str] | None) -> None:
        """Reset the files a slot edits: the parent's config and, on a code round, the editable code."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        (self.workspace / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
        for name, text in (code or {}).items():
            (self.workspace / "code" / name).parent.mkdir(parents=True, exist_ok=True)
            (self.workspace / "code" / name).write_text(text)

    def _code_diff(self, code: Mapping[str, str]) -> dict[str, str]:
        edited = {name: (self.workspace / "code" / name).read_text() for name in code}
        return {name: text for name, text in edited.items() if text != code[name]}

    def _run(self, prompt: str, iteration: int, spent_before: float) -> CliResult:
        """One recorded CLI run (failures recorded too); refuses to start once the budget is spent."""
        if self.budget_usd is not None and spent_before + self._spent >= self.budget_usd:
            raise ClaudeError(f"explore.budget_usd ({self.budget_usd:g} USD) is spent")
        started = time.monotonic()
        result, error = None, None
        try:
            result = run_claude(
                find_claude_bin(self.claude_bin),
                prompt,
                self.workspace,
                model=self.model,
                max_turns=self.max_turns,
                timeout_s=self.timeout_s,
                env=self.env,
            )
            return result
        except ClaudeError as exc:
            error = str(exc)
            raise
        finally:
            cost = 0.0 if result is None else result.cost_usd
            usage = {} if result is None else result.usage
            self._spent += cost
            self.calls.append(
                LLMCall(
                    iteration=iteration,
                    backend=self.name,
                    model=self.model,
                    prompt=json.dumps({"user": prompt}),
                    reply=None if result is None else result.text,
                    input_tokens=int(usage.get("input_tokens") or 0),
                    output_tokens=int(usage.get("output_tokens") or 0),
                    cost_usd=cost,
                    latency_s=time.monotonic() - started,
                    error=error,
                )
            )

    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        best = context.best()
        parent = best.id if best is not None else None
        return [self._propose_slot(context, slot, parent) for slot in slots]

    def _propose_slot(self, context: Context, slot: Slot, parent: int | None) -> Proposal:
        """Run the CLI; an edit the loop would reject is sent back once with the reason (as the API agents
        re-ask); a failure or a second rejection is a ``rejected`` proposal (logged; the rule agent
        decides)."""
        before = context.config_of(parent)
        prompt = prompt_text(slot, parent, context.code is not None)
        reason = ""
        for _ in range(2):
            try:
                self._write(before, context.code)
                result = self._run(prompt, slot.iteration, context.llm_spent_usd)
                code = self._code_diff(context.code) if context.code is not None else {}
            except (ClaudeError, OSError) as error:
                return Proposal({}, parent, "claude", rejected=f"claude failed: {error}".splitlines()[0])
            after, reason = _read_config(self.workspace / "config.yaml")
            if after is not None:
                proposal = Proposal(
                    config_diff(before, after), parent, "claude", rationale=result.text, code=code or None
                )
                _, reason = validate_proposal(context, proposal, slot.slot)
                if reason is None:
                    return proposal
            prompt = f"{prompt}\n\nYour previous edit was rejected: {reason}. The files are reset; try again."
        return Proposal({}, parent, "claude", rationale=result.text, rejected=reason)

    def repair(
        self, context: Context, node: Node, files: dict[str, str], traceback: str
    ) -> dict[str, str] | None:
        """The CLI sees the crashed code under code/ and the traceback in its prompt; its edit is the repair
        (None when it failed or changed nothing: the loop then rolls the node back)."""
        try:
            self._write(node.config, files)
            self._run(repair_text(node, traceback), node.id, context.llm_spent_usd)
        except (ClaudeError, OSError):  # the failed call is in self.calls; giving up means a rollback
            return None
        return self._code_diff(files) or None

    def take_calls(self) -> list[LLMCall]:
        calls, self.calls, self._spent = self.calls, [], 0.0
        return calls


__all__ = ["ClaudeAgent", "ClaudeError", "CliResult", "config_diff", "find_claude_bin", "run_claude"]
