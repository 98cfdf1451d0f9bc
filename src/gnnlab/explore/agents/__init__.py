"""Agents, registered by name: the rule agent (default), plain-search baselines, the Claude Code CLI, and
replay."""

from pathlib import Path

from gnnlab.errors import ConfigError
from gnnlab.explore.agents._base import Agent, BlockDecision, Context, Proposal, Slot, default_end_block
from gnnlab.explore.agents.baselines import OptunaAgent, RandomAgent
from gnnlab.explore.agents.claude_cli import ClaudeAgent
from gnnlab.explore.agents.replay import ReplayAgent
from gnnlab.explore.agents.rule import RuleAgent

AGENTS: dict[str, type[Agent]] = {a.name: a for a in (RuleAgent, RandomAgent, OptunaAgent, ClaudeAgent)}


def make_agent(name: str, *, replay_from: str | Path | None = None) -> Agent:
    """The agent called ``name`` (``replay`` needs the exploration directory to replay)."""
    if name == "replay":
        if replay_from is None:
            raise ConfigError("agent 'replay' needs the exploration to replay (--replay-from DIR)")
        return ReplayAgent(replay_from)
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; choose from {', '.join([*AGENTS, 'replay'])}")
    return AGENTS[name]()


__all__ = [
    "AGENTS",
    "Agent",
    "BlockDecision",
    "ClaudeAgent",
    "Context",
    "OptunaAgent",
    "Proposal",
    "RandomAgent",
    "ReplayAgent",
    "RuleAgent",
    "Slot",
    "default_end_block",
    "make_agent",
]
