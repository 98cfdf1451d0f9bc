"""``gnnlab explore``: an agent proposes runs, a UCB tree over them decides where to look next, block after
block; everything is recorded in a SQLite store so the loop can be killed and resumed at any moment.

Layers inside the package (each imports only those before it): ``space``, ``store``, ``workspace`` →
``tree`` → ``knowledge`` → ``agents`` → ``executor``, ``render``, ``plots`` → ``loop``.
"""

from gnnlab.explore.agents import AGENTS, Agent, BlockDecision, Context, Proposal, Slot, make_agent
from gnnlab.explore.executor import Executor, LocalExecutor, RunResult, RunSpec
from gnnlab.explore.loop import explore, status
from gnnlab.explore.space import SearchSpace
from gnnlab.explore.store import STORE_FILE, Node, Store

__all__ = [
    "AGENTS",
    "STORE_FILE",
    "Agent",
    "BlockDecision",
    "Context",
    "Executor",
    "LocalExecutor",
    "Node",
    "Proposal",
    "RunResult",
    "RunSpec",
    "SearchSpace",
    "Slot",
    "Store",
    "explore",
    "make_agent",
    "status",
]
