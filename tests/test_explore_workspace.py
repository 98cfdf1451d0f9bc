"""The agent workspace and the prompt an LLM agent renders from it (golden text from a known exploration)."""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from explore_helpers import TINY, InProcessExecutor, spec
from standin import proposals_for

from gnnlab.config import parse_config
from gnnlab.config.explore import LLM
from gnnlab.explore.agents import Slot
from gnnlab.explore.agents.llm import LLMAgent, Prompt, Reply
from gnnlab.explore.loop import ExplorationLoop
from gnnlab.explore.store import STORE_FILE, Store
from gnnlab.explore.workspace import list_workspace, read_workspace, write_workspace

GOLDEN = Path(__file__).parent / "golden" / "llm_prompt_round2.txt"
ROOT = parse_config({k: v for k, v in TINY.items() if k != "explore"}).model_dump(mode="json")


class Scripted(LLMAgent):
    """An LLM agent whose model is a function: keeps every prompt, answers with valid proposals."""

    name = "scripted"

    def __init__(self, workspace: Path):
        super().__init__(LLM(model="scripted"), workspace)
        self.prompts: list[Prompt] = []

    def _call(self, prompt: Prompt) -> Reply:
        self.prompts.append(prompt)
        return Reply(None, proposals_for(prompt.user), "scripted", 10, 5)


def explored(tmp_path: Path) -> tuple[Scripted, Path]:
    out = tmp_path / "ex"
    out.mkdir()
    agent = Scripted(out / "workspace")
    s = spec(n_iter_block=4, slots=2, budget={"iterations": 4})
    store = Store(out / STORE_FILE)
    try:
        loop = ExplorationLoop(
            out, store, s, ROOT, agent, InProcessExecutor(2), cache_dir=tmp_path / "cache", progress=False
        )
        loop.run()
    finally:
        store.close()
    return agent, out


def rendered(prompt: Prompt) -> str:
    images = "".join(f"{p.name}\n" for p in prompt.images)
    return f"##### SYSTEM\n{prompt.system}##### USER\n{prompt.user}##### IMAGES\n{images}"


def test_the_prompt_of_a_known_exploration_matches_the_golden_text(tmp_path):
    agent, _ = explored(tmp_path)
    assert len(agent.prompts) == 2
    assert rendered(agent.prompts[1]) == GOLDEN.read_text()


def test_the_prompt_is_built_from_the_workspace_files_only(tmp_path):
    agent, out = explored(tmp_path)
    workspace = out / "workspace"
    assert list_workspace(workspace) == [
        "analysis.md",
        "config.yaml",
        "memory.md",
        "nodes/iter_001/metrics.json",
        "nodes/iter_002/metrics.json",
        "protocol.md",
        "ucb_scores.txt",
    ]
    (workspace / "analysis.md").write_text("EDITED ANALYSIS\n")
    (workspace / "notes.txt").write_text("OFF THE LIST\n")  # present, but not an allowed name
    (workspace / "run_plot.png").write_bytes(b"\x89PNG off the list")
    prompt = agent.prompt(
        SimpleNamespace(block=1), [Slot(3, 0, "exploit")], None
    )  # the block is all it reads
    assert "=== analysis.md ===\nEDITED ANALYSIS\n" in prompt.user
    assert "OFF THE LIST" not in prompt.user and "notes.txt" not in prompt.user and prompt.images == ()
    assert prompt.user != agent.prompts[1].user


def test_the_workspace_refuses_names_off_the_list_and_paths_that_leave_it(tmp_path):
    with pytest.raises(ValueError, match="ground_truth.npz"):
        write_workspace(tmp_path, {"memory.md": b"m", "ground_truth.npz": b"x"})
    with pytest.raises(ValueError, match=r"\.\./explore\.sqlite"):
        write_workspace(tmp_path, {"../explore.sqlite": b"x"})
    workspace = write_workspace(tmp_path, {"memory.md": b"m", "nodes/iter_001/metrics.json": b"{}"})
    assert read_workspace(workspace, "memory.md") == b"m"
    for name in ["../explore.sqlite", "nodes/../../explore.sqlite", "run/plots/x.png", "/etc/passwd"]:
        with pytest.raises(PermissionError):
            read_workspace(workspace, name)
    (tmp_path / "secret").write_text("ground truth")
    os.symlink(tmp_path / "secret", workspace / "analysis.md")  # an allowed name that points outside
    with pytest.raises(PermissionError, match="leaves"):
        read_workspace(workspace, "analysis.md")
    # a rewrite leaves exactly the files given: nothing planted in between survives
    workspace = write_workspace(tmp_path, {"protocol.md": b"p"})
    assert list_workspace(workspace) == ["protocol.md"] and sorted(os.listdir(workspace)) == ["protocol.md"]
