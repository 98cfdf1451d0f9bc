"""Agents, registered by name: the rule agent (default), plain-search baselines, LLM agents (API backends
and the Claude Code CLI), and replay."""

from pathlib import Path

from gnnlab.config.explore import ExploreConfig
from gnnlab.errors import ConfigError
from gnnlab.explore.agents._base import (
    Agent,
    BlockDecision,
    Context,
    Proposal,
    Slot,
    default_end_block,
    validate_proposal,
)
from gnnlab.explore.agents.anthropic_agent import AnthropicAgent
from gnnlab.explore.agents.baselines import OptunaAgent, RandomAgent
from gnnlab.explore.agents.claude_cli import ClaudeAgent
from gnnlab.explore.agents.llm import LLMAgent
from gnnlab.explore.agents.openai_agent import OpenAIAgent
from gnnlab.explore.agents.replay import ReplayAgent
from gnnlab.explore.agents.rule import RuleAgent

AGENTS: dict[str, type[Agent]] = {a.name: a for a in (RuleAgent, RandomAgent, OptunaAgent, ClaudeAgent)}
LLM_AGENTS: dict[str, type[LLMAgent]] = {a.name: a for a in (AnthropicAgent, OpenAIAgent)}


def make_agent(
    name: str,
    *,
    replay_from: str | Path | None = None,
    spec: ExploreConfig | None = None,
    workspace: Path | None = None,
) -> Agent:
    """The agent called ``name``: ``replay`` needs the exploration to replay, an LLM agent the explore
    section (its ``llm`` settings and ``budget_usd``) and the workspace it reads its prompts from."""
    if name == "replay":
        if replay_from is None:
            raise ConfigError("agent 'replay' needs the exploration to replay (--replay-from DIR)")
        return ReplayAgent(replay_from)
    if name in LLM_AGENTS or name == ClaudeAgent.name:
        if spec is None or workspace is None:
            raise ConfigError(f"agent {name!r} needs the explore section and the agent workspace")
        if name == ClaudeAgent.name:
            return AGENTS[name](workspace, model=spec.llm.model, budget_usd=spec.budget_usd)
        return LLM_AGENTS[name](spec.llm, workspace, spec.budget_usd)
    if name not in AGENTS:
        known = ", ".join([*AGENTS, *LLM_AGENTS, "replay"])
        raise ConfigError(f"unknown agent {name!r}; choose from {known}")
    return AGENTS[name]()


__all__ = [
    "AGENTS",
    "LLM_AGENTS",
    "Agent",
    "AnthropicAgent",
    "BlockDecision",
    "ClaudeAgent",
    "Context",
    "LLMAgent",
    "OpenAIAgent",
    "OptunaAgent",
    "Proposal",
    "RandomAgent",
    "ReplayAgent",
    "RuleAgent",
    "Slot",
    "default_end_block",
    "make_agent",
    "validate_proposal",
]
