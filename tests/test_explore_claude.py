"""The ``claude`` agent: the real Claude Code CLI against a loopback stand-in, and its failure handling."""

import os
import stat
import time
from pathlib import Path

import pytest
from explore_helpers import TINY, InProcessExecutor, spec, write_config
from standin.claude_messages import ClaudeMessagesStandIn, text, tool_use

from gnnlab.config import parse_config
from gnnlab.explore import Store, explore
from gnnlab.explore.agents import AGENTS, Context, Slot
from gnnlab.explore.agents.claude_cli import (
    ClaudeAgent,
    ClaudeError,
    config_diff,
    find_claude_bin,
    run_claude,
)
from gnnlab.explore.code_edits import CodeRepo
from gnnlab.explore.executor import LocalExecutor
from gnnlab.explore.knowledge import Rules
from gnnlab.explore.space import SearchSpace
from gnnlab.explore.store import STORE_FILE

ROOT = parse_config({k: v for k, v in TINY.items() if k != "explore"}).model_dump(mode="json")


def context() -> Context:
    s = spec()
    return Context(s, SearchSpace(s), (), 1, ROOT, (), Rules(), seed=0)


PLANTED_KEY = "sk-ant-planted-7c41e9"  # must never appear in a file the loop writes


def cli_env(tmp_path: Path, url: str) -> dict[str, str]:
    """Loopback only, no key, no telemetry or updates, a private HOME so no user settings leak in."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "home" / ".claude"),
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": PLANTED_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
    }


def fake_cli(tmp_path: Path, script: str) -> str:
    """A stand-in executable for the failure paths the real CLI cannot be made to take on demand."""
    path = tmp_path / "claude"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def claude_bin() -> str:
    try:
        return find_claude_bin()
    except ClaudeError:
        pytest.skip("Claude Code CLI not installed (make test runs npm ci in tools/claude)")


def test_real_cli_edits_the_workspace_config_and_the_diff_is_the_proposal(tmp_path, claude_bin):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "memory.md").write_text("# Memory\n")  # the loop renders it; the agent appends to it
    config, memory = str(workspace / "config.yaml"), str(workspace / "memory.md")
    turns = [
        [text("Reading the config."), tool_use("Read", file_path=config), tool_use("Read", file_path=memory)],
        [
            tool_use(
                "Edit",
                file_path=config,
                old_string="learning_rate_k: 0.02",
                new_string="learning_rate_k: 0.03",
            )
        ],
        [
            tool_use(
                "Edit", file_path=memory, old_string="# Memory\n", new_string="# Memory\n## Iter 1: lr_k up\n"
            )
        ],
        [tool_use("Bash", command=f"touch {workspace}/escaped")],
        [text("Raised lr_k: the loss plateaus early.")],
    ]
    with ClaudeMessagesStandIn(turns) as standin:
        agent = ClaudeAgent(
            workspace, model="claude-standin", timeout_s=120, env=cli_env(tmp_path, standin.url)
        )
        [proposal] = agent.propose(context(), [Slot(1, 0, "exploit")])
    assert ROOT["training"]["learning_rate_k"] == 0.02  # the scripted Edit's old_string
    assert proposal.mutation == {"training.learning_rate_k": 0.03}
    assert proposal.parent is None and proposal.strategy == "claude"
    assert proposal.rationale == "Raised lr_k: the loss plateaus early."
    assert "## Iter 1: lr_k up" in (workspace / "memory.md").read_text()
    assert not (workspace / "escaped").exists()  # Bash is disallowed: the CLI answered with a tool error
    bodies = standin.messages()
    assert len(bodies) == 5 and all(b["model"] == "claude-standin" for b in bodies)
    assert "No such tool available: Bash" in str(bodies[-1]["messages"][-1])
    [call] = agent.calls
    assert call.cost_usd > 0 and call.output_tokens > 0 and call.backend == "claude" and call.error is None


def test_file_tools_never_reach_beside_the_workspace(tmp_path, claude_bin):
    """A file next to the workspace stands for the dataset cache: its content must never reach a request,
    and an edit of a file outside must not happen, whatever the model asks."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    secret = tmp_path / "ground_truth.txt"
    secret.write_text("CANARY-5e1f0c\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("x = 1\n")
    turns = [
        [tool_use("Read", file_path=str(secret)), tool_use("Read", file_path=str(outside))],
        [tool_use("Edit", file_path=str(outside), old_string="x = 1", new_string="x = 2")],
        [text("done")],
    ]
    with ClaudeMessagesStandIn(turns) as standin:
        run_claude(
            claude_bin,
            "read",
            workspace,
            model="m",
            max_turns=5,
            timeout_s=120,
            env=cli_env(tmp_path, standin.url),
        )
    assert "CANARY-5e1f0c" not in str(standin.messages())
    assert outside.read_text() == "x = 1\n"


def test_is_error_is_a_failure_even_when_subtype_says_success(tmp_path):
    binary = fake_cli(
        tmp_path, 'echo \'{"type":"result","subtype":"success","is_error":true,"result":"API 500"}\'\n'
    )
    with pytest.raises(ClaudeError, match="API 500"):
        run_claude(binary, "hi", tmp_path, model="m", max_turns=1, timeout_s=30)


def test_a_failed_cli_hands_the_slot_to_the_rule_agent(tmp_path):
    binary = fake_cli(tmp_path, "echo 'not json'; exit 1\n")
    agent = ClaudeAgent(tmp_path / "workspace", claude_bin=binary)
    [proposal] = agent.propose(context(), [Slot(1, 0, "exploit")])
    assert proposal.rejected.startswith("claude failed: claude exited 1 without a JSON result")
    [call] = agent.calls
    assert "without a JSON result" in call.error and call.reply is None


def test_the_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "child.pid"
    binary = fake_cli(tmp_path, f"sleep 60 &\necho $! > {pid_file}\nwait\n")
    started = time.monotonic()
    with pytest.raises(ClaudeError, match="timed out"):
        run_claude(binary, "hi", tmp_path, model="m", max_turns=1, timeout_s=1)
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not running(child)  # the grandchild went with the group


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait a while for init to reap it)."""
    stat_file = Path(f"/proc/{pid}/stat")
    return stat_file.exists() and stat_file.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_config_diff_reports_changed_and_added_dotted_keys_only():
    before = {"training": {"lr": 0.1, "n": 3}, "model": {"act": "silu"}}
    after = {"training": {"lr": 0.2, "n": 3, "extra": 1}, "model": {}}
    assert config_diff(before, after) == {"training.lr": 0.2, "training.extra": 1}


LR_STEPS = [0.03, 0.05, 0.01, 0.04, 0.06, 0.008, 0.02, 0.07]  # the scripted model's lr_k, call by call
TRAINING = "gnnlab/training/__init__.py"
ADAM = "    optimizer = torch.optim.Adam(groups)"
CRASH = "    optimizer = torch.optim.Adamm(groups)"  # AttributeError
BETA = "    optimizer = torch.optim.Adam(groups, betas=({}, 0.9))"  # ValueError: invalid beta


def explore_turns(workspace: Path) -> list:
    """The model's side, call by call: read config.yaml and edit its lr_k line (answering what the Read
    returned); at block 2's start also edit the optimizer into a crash (iteration 5: repaired to AdamW;
    iteration 6: its repair crashes too, so it is rolled back)."""
    config, code = str(workspace / "config.yaml"), str(workspace / "code" / TRAINING)

    def edit(value: float):
        def turn(body):
            shown = str(body["messages"][-1]["content"][0]["content"])
            [line] = [ln.split("\t", 1)[1] for ln in shown.splitlines() if "\t  learning_rate_k: " in ln]
            new = f"  learning_rate_k: {value}"
            return [tool_use("Edit", file_path=config, old_string=line, new_string=new)]

        return turn

    def configure(value: float, code_edit: tuple[str, str] | None = None) -> list:
        turns = [[tool_use("Read", file_path=config)], edit(value)]
        if code_edit is not None:
            old, new = code_edit
            turns += [
                [tool_use("Read", file_path=code)],
                [tool_use("Edit", file_path=code, old_string=old, new_string=new)],
            ]
        return [*turns, [text(f"try lr_k={value}")]]

    def repair(old: str, new: str) -> list:
        return [
            [tool_use("Read", file_path=code)],
            [tool_use("Edit", file_path=code, old_string=old, new_string=new)],
            [text("fixed")],
        ]

    turns: list = []
    for value in LR_STEPS[:4]:
        turns += configure(value)
    turns += configure(LR_STEPS[4], (ADAM, CRASH)) + configure(LR_STEPS[5], (ADAM, BETA.format(2.0)))
    turns += repair(CRASH, ADAM.replace("Adam", "AdamW")) + repair(BETA.format(2.0), BETA.format(3.0))
    for value in LR_STEPS[6:]:
        turns += configure(value)
    return turns


def test_an_exploration_with_code_edits_driven_by_the_real_cli_is_replayed_exactly(
    tmp_path, claude_bin, monkeypatch
):
    """2 blocks x 4 iterations, 2 slots, real runs: every node's mutation is the scripted edit; at block 2's
    start one code edit crashes and is repaired, one is rolled back; replay reproduces tree, code, metrics."""
    workspace, cache = tmp_path / "source" / "workspace", tmp_path / "cache"
    with ClaudeMessagesStandIn(explore_turns(workspace)) as standin:

        class ScriptedClaude(ClaudeAgent):
            def __init__(self, workspace: Path, **settings) -> None:
                super().__init__(
                    workspace, model="claude-standin", timeout_s=120, env=cli_env(tmp_path, standin.url)
                )

        monkeypatch.setitem(AGENTS, "claude", ScriptedClaude)
        config = write_config(
            tmp_path / "ex.yaml", agent="claude", n_iter_block=4, allow_code_edits=True, max_repair_attempts=1
        )
        explore(
            config,
            tmp_path / "source",
            iterations=8,
            executor=LocalExecutor(2),
            cache_dir=cache,
            progress=False,
        )
    recorded = nodes_of(tmp_path / "source")
    assert [n.block for n in recorded] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [n.mutation for n in recorded] == [{"training.learning_rate_k": v} for v in LR_STEPS]
    assert all(n.status == "done" for n in recorded)
    assert len(standin.messages()) == 3 * 6 + 5 * 2 + 3 * 2
    source = Store(tmp_path / "source" / STORE_FILE)
    try:
        base = source.meta("code_base")
        events = [(e["iteration"], e["kind"]) for e in source.events()]
        calls = source.llm_calls()
    finally:
        source.close()
    assert events == [(5, "repair"), (6, "repair"), (6, "rollback")]
    assert len(calls) == 10 and all(c["backend"] == "claude" and c["cost_usd"] > 0 for c in calls)
    repaired, rolled_back = recorded[4], recorded[5]
    repo = CodeRepo(tmp_path / "source" / "code")
    assert repo.log() == {
        "main": "base: the training code at the start of the exploration",
        "iter-005": f"iter 5: try lr_k={LR_STEPS[4]} (repair 1)",
    }
    assert "torch.optim.AdamW(groups)" in repo.files(repaired.code_commit, [TRAINING])[TRAINING]
    assert rolled_back.code_commit == rolled_back.code_parent == base
    assert [n.code_commit == base for n in recorded[:4]] == [True] * 4

    explore(
        None,
        tmp_path / "copy",
        agent="replay",
        replay_from=tmp_path / "source",
        executor=LocalExecutor(2),
        cache_dir=cache,
        progress=False,
    )
    copied = nodes_of(tmp_path / "copy")
    assert [(n.id, n.block, n.parent, n.config, n.mutation, scores(n)) for n in copied] == [
        (n.id, n.block, n.parent, n.config, n.mutation, scores(n)) for n in recorded
    ]
    replayed = CodeRepo(tmp_path / "copy" / "code")
    assert [replayed.files(n.code_commit, [TRAINING]) for n in copied] == [
        repo.files(n.code_commit, [TRAINING]) for n in recorded
    ]


def test_invalid_yaml_is_re_asked_once_then_the_rule_agent_takes_the_slot(tmp_path, claude_bin, monkeypatch):
    out = tmp_path / "out"
    config = str(out / "workspace" / "config.yaml")
    turns = [
        [tool_use("Read", file_path=config)],
        [tool_use("Edit", file_path=config, old_string="simulation:", new_string="simulation: [")],
        [text("broke it")],
        [tool_use("Read", file_path=config)],
        [tool_use("Edit", file_path=config, old_string="n_frames: 400", new_string="n_frames: 500")],
        [text("more frames")],
    ]
    with ClaudeMessagesStandIn(turns) as standin:

        class ScriptedClaude(ClaudeAgent):
            def __init__(self, workspace: Path, **settings) -> None:
                super().__init__(workspace, model="m", timeout_s=120, env=cli_env(tmp_path, standin.url))

        monkeypatch.setitem(AGENTS, "claude", ScriptedClaude)
        explore(
            write_config(tmp_path / "ex.yaml", agent="claude", slots=1),
            out,
            iterations=1,
            executor=InProcessExecutor(1),
            progress=False,
        )
    prompts = [str(body["messages"][0]["content"]) for body in standin.messages()]
    assert "config.yaml is not valid YAML" in prompts[3]  # the re-ask names what was wrong
    store = Store(out / STORE_FILE)
    try:
        [node], [event], calls = store.nodes(), store.events("rejected"), store.llm_calls()
    finally:
        store.close()
    assert "simulation.n_frames" in event["detail"]["reason"] and "frozen" in event["detail"]["reason"]
    assert node.agent == "rule (after rejecting claude)" and node.status == "done"
    assert len(calls) == 2
    written = [f.read_bytes() for f in out.rglob("*") if f.is_file()]
    assert written and not any(PLANTED_KEY.encode() in data for data in written)


def scores(node) -> dict:
    """A real run's metrics without its speed (wall-clock time, frames per second), which no re-run
    reproduces."""
    return {k: v for k, v in node.metrics.items() if k not in ("training_time_min", "frames_per_second")}


def nodes_of(directory: Path) -> list:
    store = Store(directory / STORE_FILE)
    try:
        return store.nodes()
    finally:
        store.close()
