"""The exploration loop: propose a round, record it, run it, record the results, end blocks; repeat.

Every step is a transaction on the store, and the loop derives what to do next from the store alone, so a
loop killed at any moment resumes (``resume=True``) exactly where it stopped: a round that was recorded but
not finished is run again with the identical configs and seeds, a block whose end was not recorded is
ended, and nothing is proposed twice.

Rounds are synchronous — propose up to ``slots`` nodes, run them concurrently, wait for all — so an agent's
proposals depend only on finished results, never on which run happened to finish first. That keeps the rule
agent deterministic for a seed and ``replay`` exact, at the cost of idle slots while the slowest run of a
round finishes.
"""

import dataclasses
import difflib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from gnnlab import pipeline
from gnnlab.config import ExploreConfig, dump_config, load_explore, parse_config, simulation_hash
from gnnlab.errors import ConfigError, GnnlabError
from gnnlab.explore.agents import (
    Agent,
    BlockDecision,
    Context,
    Proposal,
    RuleAgent,
    Slot,
    make_agent,
    validate_proposal,
)
from gnnlab.explore.code_edits import EVALUATION_ROOT, CodeRepo, EditRejected, commit_edit, tree_hash
from gnnlab.explore.executor import Executor, LocalExecutor, RunResult, RunSpec
from gnnlab.explore.knowledge import Rules
from gnnlab.explore.plots import plot_progress, plot_tree
from gnnlab.explore.render import analysis_md, memory_md, protocol_md, ucb_txt
from gnnlab.explore.space import SearchSpace, set_values
from gnnlab.explore.store import STORE_FILE, Node, Store
from gnnlab.explore.tree import node_rewards, ucb_scores
from gnnlab.explore.workspace import PLOTS, RUN_PLOTS, WORKSPACE, metrics_json, write_workspace


@dataclasses.dataclass
class Timings:
    """Where the loop's time went: runs (waiting on the executor), simulation, and everything else."""

    runs_s: float = 0.0
    simulation_s: float = 0.0
    total_s: float = 0.0

    @property
    def overhead_s(self) -> float:
        return self.total_s - self.runs_s - self.simulation_s


class ExplorationLoop:
    def __init__(
        self,
        out: Path,
        store: Store,
        spec: ExploreConfig,
        base: dict[str, Any],
        agent: Agent,
        executor: Executor,
        *,
        cache_dir: Path | None,
        progress: bool,
    ):
        self.out, self.store, self.spec, self.base = out, store, spec, base
        self.space = SearchSpace(spec)
        self.agent, self.executor = agent, executor
        self.fallback = RuleAgent()
        self.cache_dir, self.progress = cache_dir, progress
        self.timings = Timings()
        self.code = self._code_repo() if spec.allow_code_edits else None

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self) -> None:
        session_start = time.perf_counter()
        elapsed_before = float(self.store.meta("elapsed_s", 0.0))
        bar = tqdm(
            total=self.spec.budget.iterations,
            initial=sum(n.is_finished for n in self.store.nodes()),
            desc="explore",
            unit="iter",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            with bar:
                while True:
                    nodes = self.store.nodes()
                    unfinished = [n for n in nodes if not n.is_finished]
                    if unfinished:
                        self._execute(unfinished, bar)
                        self.render(plots=self.spec.plots)
                        continue
                    ending = self._block_to_end(nodes)
                    if ending is not None:
                        self._end_block(ending)
                        continue
                    elapsed = elapsed_before + time.perf_counter() - session_start
                    if not self._budget_left(nodes, elapsed):
                        break
                    self._propose_round(nodes)
                    self.render()
        finally:
            self.executor.shutdown()
            self.timings.total_s += time.perf_counter() - session_start
            self._save_timings(elapsed_before + time.perf_counter() - session_start)
        self.render(plots=self.spec.plots)

    def _budget_left(self, nodes: list[Node], elapsed_s: float) -> bool:
        budget = self.spec.budget
        if len(nodes) >= budget.iterations:
            return False
        return budget.wall_minutes is None or elapsed_s < 60 * budget.wall_minutes

    def _save_timings(self, elapsed_s: float) -> None:
        previous = self.store.meta("timings", {"runs_s": 0.0, "simulation_s": 0.0, "total_s": 0.0})
        merged = {k: previous[k] + getattr(self.timings, k) for k in ("runs_s", "simulation_s", "total_s")}
        self.store.set_meta(elapsed_s=elapsed_s, timings=merged)

    # --- code edits -----------------------------------------------------------------------------------------
    def _code_repo(self) -> CodeRepo:
        """``DIR/code``, created with the exploration (its base revision and the evaluation code's hash go
        into the store, so a resumed loop checks edits against the code the exploration started from)."""
        root = self.out / "code"
        if self.store.meta("code_base") is None:
            shutil.rmtree(root, ignore_errors=True)  # left by a loop killed before it recorded the base
            repo = CodeRepo.create(root)
            self.store.set_meta(code_base=repo.head(), evaluation_hash=tree_hash(EVALUATION_ROOT))
            return repo
        return CodeRepo(root)

    def _editable(self, revision: str) -> dict[str, str]:
        assert self.code is not None
        return self.code.files(revision, sorted({r.file for r in self.spec.code_regions}))

    def _block_revision(self, block: int) -> str | None:
        """The code the block's root config ran (its best node's), None when code edits are off."""
        return None if self.code is None else self.store.meta("code_roots", {}).get(str(block))

    def _code_of(self, proposal: Proposal, slot: Slot, block: int, nodes: list[Node]) -> tuple[str, str]:
        """(parent revision, revision to run) of a proposal: it inherits its parent's code, or commits its
        own edit on top of it (raises :class:`EditRejected` when the edit fails pre-flight)."""
        assert self.code is not None
        source = proposal.robust_of if proposal.robust_of is not None else proposal.parent
        parent = next((n.code_commit for n in nodes if n.id == source), None) or self._block_revision(block)
        assert parent is not None
        if not proposal.code:
            return parent, parent
        hypothesis = (proposal.rationale.strip().splitlines() or [proposal.strategy])[0][:100]
        revision = commit_edit(
            self.code,
            parent,
            proposal.code,
            self.spec.code_regions,
            message=f"iter {slot.iteration}: {hypothesis}",
            evaluation_hash=self.store.meta("evaluation_hash"),
        )
        return parent, revision

    def _repair(self, node: Node) -> None:
        """A node crashed on code it edited: ask the agent for a repair (fed the traceback) until one passes
        pre-flight or ``max_repair_attempts`` are used, then re-run it; else roll back to the parent's code.
        The crashed attempt's folder is kept under ``attempts/``."""
        assert self.code is not None and node.code_parent is not None
        folder = (self.out / node.run_dir).parent
        tried = [
            e for e in self.store.events() if e["iteration"] == node.id and e["kind"].startswith("repair")
        ]
        keep = folder / "attempts" / str(len(tried) + 1)
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("run", "stdout.log", "stderr.log"):
            if (folder / name).exists():
                os.replace(folder / name, keep / name)
        traceback = (
            (keep / "stderr.log").read_text(errors="replace")[-4000:]
            if (keep / "stderr.log").is_file()
            else ""
        )
        crashed = node.code_commit
        hypothesis = (node.rationale.strip().splitlines() or [node.strategy])[0][:100]
        for attempt in range(len(tried) + 1, self.spec.max_repair_attempts + 1):
            context = self._context(node.block, self.store.nodes())
            try:
                files = self.agent.repair(context, node, self._editable(crashed), traceback)
            finally:
                for call in self.agent.take_calls():
                    self.store.record_llm_call(call)
            if files is None:
                break
            detail = {"attempt": attempt, "crashed": crashed, "traceback": traceback[-1500:]}
            try:
                revision = commit_edit(
                    self.code,
                    node.code_parent,
                    files,
                    self.spec.code_regions,
                    message=f"iter {node.id}: {hypothesis} (repair {attempt})",
                    evaluation_hash=self.store.meta("evaluation_hash"),
                )
            except EditRejected as error:
                self.store.log_event("repair-rejected", {**detail, "reason": str(error)}, node.id)
                traceback = f"your repair was rejected before running: {error}"
                continue
            self.store.requeue(node.id, revision, "repair", {**detail, "revision": revision})
            return
        self.store.requeue(
            node.id, node.code_parent, "rollback", {"crashed": crashed, "to": node.code_parent}
        )

    # --- blocks -------------------------------------------------------------------------------------------
    def _current_block(self, nodes: list[Node]) -> int:
        if not nodes:
            return 1
        last = nodes[-1].block
        full = sum(n.block == last for n in nodes) >= self.spec.n_iter_block
        return last + 1 if full else last

    def _block_to_end(self, nodes: list[Node]) -> int | None:
        if not nodes:
            return None
        last = nodes[-1].block
        ended = {b.block for b in self.store.blocks() if b.ended is not None}
        if last in ended or sum(n.block == last for n in nodes) < self.spec.n_iter_block:
            return None
        return last

    def _rules(self) -> Rules:
        ended = [b for b in self.store.blocks() if b.rules is not None]
        return Rules(**ended[-1].rules) if ended else Rules()

    def _context(self, block: int, nodes: list[Node], code: dict[str, str] | None = None) -> Context:
        rules = self._rules()
        record = next(b for b in self.store.blocks() if b.block == block)
        return Context(
            spec=self.spec,
            space=self.space,
            nodes=tuple(nodes),
            block=block,
            root_config=record.root_config,
            ucb=tuple(ucb_scores(self.spec, nodes, block, c_scale=rules.ucb_c_scale)),
            rules=rules,
            seed=self.spec.seed,
            regimes_used=tuple(b.regime for b in self.store.blocks()),
            llm_spent_usd=self.store.llm_spent_usd(),
            code=code,
        )

    def _start_block(self, block: int, nodes: list[Node]) -> None:
        blocks = {b.block: b for b in self.store.blocks()}
        if block in blocks:
            return
        regime = blocks[block - 1].regime if block - 1 in blocks else None
        if block - 1 in blocks and (blocks[block - 1].summary or {}).get("next_regime"):
            regime = blocks[block - 1].summary["next_regime"]
        root, revision = self.base, self.store.meta("code_base")
        rewards = node_rewards(self.spec, nodes)
        if rewards:
            best = next(n for n in nodes if n.id == max(rewards, key=lambda i: (rewards[i], -i)))
            root, revision = best.config, best.code_commit or revision
        if self.code is not None:
            self.store.set_meta(code_roots={**self.store.meta("code_roots", {}), str(block): revision})
        self.store.start_block(block, apply_regime(self.spec, root, regime), regime)

    def _end_block(self, block: int) -> None:
        nodes = self.store.nodes()
        context = self._context(block, nodes)
        decision: BlockDecision = self.agent.end_block(context)
        old = protocol_md(self.spec, context.rules)
        new = protocol_md(self.spec, decision.rules)
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), f"protocol before block {block + 1}", "after"
            )
        )
        summary = {**decision.summary, "rule_changes": list(decision.reasons), "next_regime": decision.regime}
        self.store.end_block(block, summary, dataclasses.asdict(decision.rules), diff)
        self.render()
        snapshots = self.out / "memory"
        snapshots.mkdir(exist_ok=True)
        shutil.copyfile(self.out / "memory.md", snapshots / f"block_{block:03d}.md")

    # --- proposing ----------------------------------------------------------------------------------------
    def _propose_round(self, nodes: list[Node]) -> None:
        block = self._current_block(nodes)
        self._start_block(block, nodes)
        in_block = sum(n.block == block for n in nodes)
        size = min(
            self.spec.slots, self.spec.n_iter_block - in_block, self.spec.budget.iterations - len(nodes)
        )
        slots = [Slot(len(nodes) + 1 + i, i, self.spec.role(i)) for i in range(size)]
        code_round = self.code is not None and in_block == 0  # code edits only at a block boundary
        revision = self._block_revision(block)
        code = self._editable(revision) if code_round and revision is not None else None
        context = self._context(block, nodes, code)
        self.render()  # the new block's files, before the agent's view of them is refreshed
        if self.agent.reads_workspace:  # no other agent reads it: no copying for rule/random/optuna
            self.write_workspace(block, nodes, code)
        try:
            proposals = self.agent.propose(context, slots)
        finally:
            for call in self.agent.take_calls():
                self.store.record_llm_call(call)
        if len(proposals) != len(slots):
            raise GnnlabError(
                f"agent {self.agent.name!r} returned {len(proposals)} proposals for {len(slots)} slots"
            )
        rows = []
        source = pipeline.code_revision()  # two git calls: once per round, not per node
        for slot, proposal in zip(slots, proposals, strict=True):
            agent_name = self.agent.name
            config, reason = validate_proposal(context, proposal, slot.slot)
            revisions: tuple[str | None, str | None] = (None, None)
            if reason is None and self.code is not None:
                try:
                    revisions = self._code_of(proposal, slot, block, nodes)
                except EditRejected as error:
                    reason = f"code edit rejected: {error}"
            if reason is not None:
                self.store.log_event(
                    "rejected",
                    {"agent": agent_name, "reason": reason, "proposal": dataclasses.asdict(proposal)},
                    slot.iteration,
                )
                (proposal,) = self.fallback.propose(context, [slot])
                agent_name = f"{self.fallback.name} (after rejecting {self.agent.name})"
                config, reason = validate_proposal(context, proposal, slot.slot)
                if reason is not None:
                    raise GnnlabError(f"the rule agent's fallback proposal is invalid: {reason}")
                if self.code is not None:
                    revisions = self._code_of(proposal, slot, block, nodes)
            assert config is not None
            row = self._row(slot, block, proposal, config, agent_name, context, source)
            rows.append({**row, "code_parent": revisions[0], "code_commit": revisions[1]})
        self.store.add_nodes(rows)

    def _row(
        self, slot: Slot, block: int, p: Proposal, config: dict, agent: str, ctx: Context, revision: str
    ) -> dict:
        seen = {
            "iteration": slot.iteration,
            "block": block,
            "role": slot.role,
            "rules": dataclasses.asdict(ctx.rules),
            "ucb": [dataclasses.asdict(e) for e in ctx.ucb[:8]],
        }
        return {
            "id": slot.iteration,
            "block": block,
            "slot": slot.slot,
            "parent": p.parent,
            "robust_of": p.robust_of,
            "config": config,
            "mutation": p.mutation,
            "strategy": p.strategy,
            "rationale": p.rationale,
            "agent": agent,
            "training_seed": config["training"]["seed"],
            "simulation_seed": config["simulation"]["seed"],
            "code_revision": revision,
            "run_dir": str(Path("iterations") / f"iter_{slot.iteration:03d}" / "run"),
            "agent_input": json.dumps(seen, sort_keys=True),
            "agent_output": json.dumps(dataclasses.asdict(p), sort_keys=True, default=str),
        }

    # --- executing ----------------------------------------------------------------------------------------
    def _execute(self, nodes: list[Node], bar: tqdm) -> None:
        """Run the unfinished nodes of a round (datasets simulated first, once each, in this process)."""
        start = time.perf_counter()
        runnable = []
        for node in nodes:
            config = parse_config(node.config, f"node {node.id}")
            try:
                pipeline.simulate(config, cache_dir=self.cache_dir)
            except GnnlabError as exc:
                self.store.record_result(
                    node.id, status="failed", metrics=None, failure=f"simulation: {exc}", run_seconds=0.0
                )
                continue
            runnable.append((node, config))
        self.timings.simulation_s += time.perf_counter() - start
        for node, config in runnable:
            self.store.mark_running(node.id)
            self.executor.submit(
                RunSpec(
                    node=node.id,
                    config_yaml=dump_config(config),
                    run_dir=self.out / node.run_dir,
                    timeout_s=60 * self.spec.run_timeout_minutes,
                    cache_dir=self.cache_dir,
                    plots=self.spec.plots,
                    code_dir=self._worktree(node),
                )
            )
        # crashed code edits are repaired once the whole round is in, in node order, so what the agent is
        # asked does not depend on which run happened to finish first
        crashed: list[Node] = []
        while self.executor.running():
            waited = time.perf_counter()
            results = self.executor.wait()
            self.timings.runs_s += time.perf_counter() - waited
            for result in results:
                node = self.store.node(result.node)
                if self.code is not None:
                    self._drop_worktree(node)
                    if _crashed(result) and node.edited_code:
                        crashed.append(node)
                        continue
                    if node.edited_code:
                        self.code.keep(node.id, node.code_commit)
                self.store.record_result(
                    result.node,
                    status=result.status,
                    metrics=result.metrics,
                    failure=result.failure,
                    run_seconds=result.seconds,
                )
                self._link_iteration(self.store.node(result.node))
                bar.update()
            self.render()
        for node in sorted(crashed, key=lambda n: n.id):
            self._repair(node)

    def _worktree(self, node: Node) -> Path | None:
        """A checkout of the node's code revision for its run, when that is not the installed code."""
        if self.code is None or node.code_commit in (None, self.store.meta("code_base")):
            return None
        path = (self.out / node.run_dir).parent / "code"
        self._drop_worktree(node)  # left by a killed loop
        return self.code.worktree(node.code_commit, path)

    def _drop_worktree(self, node: Node) -> None:
        assert self.code is not None
        path = (self.out / node.run_dir).parent / "code"
        if path.exists():
            self.code.remove_worktree(path)

    def _link_iteration(self, node: Node) -> None:
        run_dir = self.out / node.run_dir
        folder = run_dir.parent
        if (run_dir / "analysis.log").is_file():
            shutil.copyfile(run_dir / "analysis.log", folder / "analysis.log")
        link = folder / "plots"
        if (run_dir / "plots").is_dir() and not link.exists():
            link.symlink_to("run/plots", target_is_directory=True)

    # --- rendering ----------------------------------------------------------------------------------------
    def render(self, *, plots: bool = False) -> None:
        """Rewrite every derived file from the store (atomic replace, so a reader never sees half a file);
        the pictures too when ``plots`` (once per round: drawing costs more than the rest together)."""
        nodes = self.store.nodes()
        blocks = self.store.blocks()
        rules = self._rules()
        block = blocks[-1].block if blocks else 1
        entries = ucb_scores(self.spec, nodes, block, c_scale=rules.ucb_c_scale)
        files = {  # keyed by the names in RENDERED, which the workspace copies
            "analysis.md": analysis_md(self.spec, nodes, blocks, self.base),
            "memory.md": memory_md(self.spec, nodes, blocks, block),
            "ucb_scores.txt": ucb_txt(self.spec, entries, nodes),
            "protocol.md": protocol_md(self.spec, rules),
        }
        for name, text in files.items():
            _write_atomic(self.out / name, text)
        versions = self.store.protocol_versions()
        protocol_dir = self.out / "protocol"
        protocol_dir.mkdir(exist_ok=True)
        _write_atomic(protocol_dir / "block_001.md", protocol_md(self.spec, Rules()))
        for v in versions:
            _write_atomic(
                protocol_dir / f"block_{v['block'] + 1:03d}.md", protocol_md(self.spec, Rules(**v["rules"]))
            )
        _write_atomic(protocol_dir / "versions.diff", "".join(v["diff"] for v in versions))
        if plots and any(n.is_finished for n in nodes):
            plot_tree(self.spec, nodes, self.out / "tree.png")
            plot_progress(self.spec, nodes, self.out / "progress.png")

    def write_workspace(self, block: int, nodes: list[Node], code: dict[str, str] | None = None) -> Path:
        """Refresh ``DIR/workspace/``, the agent's whole view, from the store and the loop's own files, plus
        the latest round's truth-free run figures (see :mod:`gnnlab.explore.workspace`: nothing else of a
        run directory, and nothing of the dataset cache, goes in)."""
        rewards = node_rewards(self.spec, nodes)
        scored = [n for n in nodes if n.block == block and n.id in rewards and n.robust_of is None]
        record = next(b for b in self.store.blocks() if b.block == block)
        current = max(scored, key=lambda n: (rewards[n.id], -n.id)).config if scored else record.root_config
        files = {
            "config.yaml": yaml.safe_dump(current, sort_keys=False).encode(),
            **{name: (self.out / name).read_bytes() for name in RENDERED},
            **{
                f"nodes/iter_{n.id:03d}/metrics.json": metrics_json(n.metrics).encode()
                for n in nodes
                if n.is_finished
            },
            **{name: (self.out / name).read_bytes() for name in PLOTS if (self.out / name).is_file()},
            **{
                f"nodes/iter_{n.id:03d}/{name}": path.read_bytes()
                for n in [n for n in nodes if n.is_finished][-self.spec.slots :]
                for name in RUN_PLOTS
                if (path := self.out / n.run_dir / "plots" / name).is_file()
            },
            **{f"code/{name}": text.encode() for name, text in (code or {}).items()},
        }
        return write_workspace(self.out, files)


RENDERED = ("analysis.md", "memory.md", "ucb_scores.txt", "protocol.md")


def _crashed(result: RunResult) -> bool:
    """The run died with an exception (what a repair can fix), not a diverged loss or a timeout."""
    return result.status == "failed" and (result.failure or "").startswith("crashed")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def apply_regime(spec: ExploreConfig, config: dict[str, Any], regime: str | None) -> dict[str, Any]:
    """``config`` with the named regime's simulation keys set (validated as a run config)."""
    if regime is None:
        return config
    match = next((r for r in spec.regimes if r.name == regime), None)
    if match is None:
        raise ConfigError(f"unknown regime {regime!r}; declared: {', '.join(r.name for r in spec.regimes)}")
    return parse_config(set_values(config, match.set), f"regime {regime!r}").model_dump(mode="json")


def explore(
    config: str | Path | None,
    out: str | Path,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    iterations: int | None = None,
    agent: str | None = None,
    slots: int | None = None,
    seed: int | None = None,
    resume: bool = False,
    replay_from: str | Path | None = None,
    executor: Executor | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) an exploration into ``out``; returns :func:`status` at the end.

    ``config`` is a YAML file holding a system config and its ``explore`` section; the keyword arguments
    override that section (``iterations`` is the iteration budget). With ``agent="replay"``, ``replay_from``
    names the exploration to re-issue, and its config is used when ``config`` is None.
    """
    out = Path(out)
    store_path = out / STORE_FILE
    if store_path.is_file() and not resume:
        raise ConfigError(
            f"{out}: holds an exploration already; pass --resume to continue it, or choose another --out"
        )
    if resume and not store_path.is_file():
        raise ConfigError(f"{out}: no exploration to resume ({STORE_FILE} is missing)")
    out.mkdir(parents=True, exist_ok=True)
    store = Store(store_path)
    try:
        if resume:
            spec = ExploreConfig.model_validate(store.meta("spec"))
            base = store.meta("base_config")
            replay_from = store.meta("replay_from")
            if iterations is not None:
                spec = spec.model_copy(
                    update={"budget": spec.budget.model_copy(update={"iterations": iterations})}
                )
                store.set_meta(spec=spec.model_dump(mode="json"))
        else:
            spec, base = _load(config, overrides, replay_from)
            updates = {"agent": agent, "slots": slots, "seed": seed}
            spec = spec.model_copy(update={k: v for k, v in updates.items() if v is not None})
            if iterations is not None:
                spec = spec.model_copy(
                    update={"budget": spec.budget.model_copy(update={"iterations": iterations})}
                )
            spec = ExploreConfig.model_validate(spec.model_dump(mode="json"))
            for regime in spec.regimes:
                apply_regime(spec, base, regime.name)
            store.set_meta(
                spec=spec.model_dump(mode="json"),
                base_config=base,
                replay_from=None if replay_from is None else str(replay_from),
                created=time.time(),
            )
        loop = ExplorationLoop(
            out,
            store,
            spec,
            base,
            make_agent(spec.agent, replay_from=replay_from, spec=spec, workspace=out / WORKSPACE),
            executor or LocalExecutor(spec.slots),
            cache_dir=cache_dir,
            progress=progress,
        )
        loop.run()
    finally:
        store.close()
    return status(out)


def _load(
    config: str | Path | None, overrides: list[str] | tuple[str, ...], replay_from: str | Path | None
) -> tuple[ExploreConfig, dict[str, Any]]:
    if config is None:
        if replay_from is None:
            raise ConfigError("explore needs a CONFIG with an explore section (or --replay-from DIR)")
        source = Store(Path(replay_from) / STORE_FILE)
        try:
            spec = ExploreConfig.model_validate({**source.meta("spec"), "agent": "replay"})
            return spec, source.meta("base_config")
        finally:
            source.close()
    run_config, spec = load_explore(config, overrides)
    if not spec.parameters and spec.agent != "replay":
        raise ConfigError(f"{config}: the explore section declares no parameters")
    return spec, run_config.model_dump(mode="json")


def status(out: str | Path) -> dict[str, Any]:
    """A summary of an exploration directory (also while it runs): progress, failures, the best node."""
    out = Path(out)
    if not (out / STORE_FILE).is_file():
        raise ConfigError(f"{out}: not an exploration directory ({STORE_FILE} is missing)")
    store = Store(out / STORE_FILE)
    try:
        spec = ExploreConfig.model_validate(store.meta("spec"))
        nodes = store.nodes()
        timings = store.meta("timings", {"runs_s": 0.0, "simulation_s": 0.0, "total_s": 0.0})
        rewards = node_rewards(spec, nodes)
        best = None
        if rewards:
            best_id = max(rewards, key=lambda i: (rewards[i], -i))
            node = next(n for n in nodes if n.id == best_id)
            reruns = [n for n in nodes if n.robust_of == best_id and n.status == "done"]
            metric_runs = [
                v for n in [node, *reruns] if isinstance(v := (n.metrics or {}).get(spec.metric), int | float)
            ]
            best = {
                "node": best_id,
                "reward": rewards[best_id],
                "config": node.config,
                "metrics": node.metrics,
                "metric_mean": sum(metric_runs) / len(metric_runs) if metric_runs else None,
                "n_runs": len(metric_runs),
            }
        done = [n for n in nodes if n.is_finished]
        overhead = timings["total_s"] - timings["runs_s"] - timings["simulation_s"]
        return {
            "directory": str(out),
            "agent": spec.agent,
            "metric": spec.metric,
            "iterations_done": len(done),
            "iterations_budget": spec.budget.iterations,
            "blocks": max((n.block for n in nodes), default=0),
            "failed": [{"node": n.id, "reason": n.failure} for n in nodes if n.status == "failed"],
            "running": [n.id for n in nodes if n.status == "running"],
            "pending": [n.id for n in nodes if n.status == "pending"],
            "rejected_proposals": len(store.events("rejected")),
            "llm": _llm_summary(store.llm_calls()),
            "best": best,
            "wall_minutes": float(store.meta("elapsed_s", 0.0)) / 60,
            "run_minutes": sum(n.run_seconds or 0.0 for n in done) / 60,
            "overhead_s_per_iteration": overhead / max(1, len(done)),
            "simulation_hashes": sorted({simulation_hash(parse_config(n.config)) for n in nodes}),
        }
    finally:
        store.close()


def _llm_summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "calls": len(calls),
        "calls_with_error": sum(c["error"] is not None for c in calls),
        "input_tokens": sum(c["input_tokens"] for c in calls),
        "output_tokens": sum(c["output_tokens"] for c in calls),
        "cost_usd": sum(c["cost_usd"] for c in calls),
    }


__all__ = ["ExplorationLoop", "apply_regime", "explore", "status"]
