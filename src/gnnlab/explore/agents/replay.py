"""``replay``: re-issue the proposals (and block-end decisions) recorded in another exploration's store.

Same proposals, same configs, same seeds: the runs are an exact re-run of the recorded exploration, without
the agent that made it (an LLM need not be called again).
"""

from collections.abc import Sequence
from pathlib import Path

from gnnlab.errors import ConfigError
from gnnlab.explore.agents._base import Agent, BlockDecision, Context, Proposal, Slot
from gnnlab.explore.code_edits import CodeRepo
from gnnlab.explore.knowledge import Rules
from gnnlab.explore.store import STORE_FILE, Store


class ReplayAgent(Agent):
    name = "replay"

    def __init__(self, source: str | Path):
        path = Path(source) / STORE_FILE
        if not path.is_file():
            raise ConfigError(f"{source}: no exploration to replay ({STORE_FILE} is missing)")
        store = Store(path)
        try:
            self.nodes = {n.id: n for n in store.nodes()}
            self.blocks = {b.block: b for b in store.blocks()}
        finally:
            store.close()
        self.source = Path(source)
        # the code each node ran, for explorations that allowed code edits
        self.repo = CodeRepo(self.source / "code") if (self.source / "code").is_dir() else None

    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        out = []
        for slot in slots:
            node = self.nodes.get(slot.iteration)
            if node is None:
                raise ConfigError(
                    f"{self.source}: the recorded exploration has no iteration {slot.iteration}"
                )
            out.append(
                Proposal(
                    node.mutation,
                    node.parent,
                    node.strategy,
                    node.rationale,
                    robust_of=node.robust_of,
                    training_seed=node.training_seed if node.robust_of is not None else None,
                    code=self._code(node, context),
                )
            )
        return out

    def _code(self, node, context: Context) -> dict[str, str] | None:
        """The files of the node's accepted edit (after its repairs); None if it kept its parent's code."""
        if self.repo is None or not node.edited_code or context.code is None:
            return None
        return self.repo.files(node.code_commit, sorted(context.code))

    def end_block(self, context: Context) -> BlockDecision:
        recorded = self.blocks.get(context.block)
        following = self.blocks.get(context.block + 1)
        if recorded is None or recorded.summary is None or recorded.rules is None:
            raise ConfigError(f"{self.source}: block {context.block} has no recorded end")
        regime = following.regime if following is not None else None
        return BlockDecision(recorded.summary, Rules(**recorded.rules), regime, ("replayed",))


__all__ = ["ReplayAgent"]
