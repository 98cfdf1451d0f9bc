"""Agent code edits: region and import pre-flight, commits per iteration, a worktree per node, and the loop's
repair-then-rollback with real runs of the edited code."""

from pathlib import Path

import pytest
from explore_helpers import InProcessExecutor, write_config

from gnnlab.config.explore import OPTIMIZER_REGION
from gnnlab.explore import Store, explore
from gnnlab.explore.agents import AGENTS, Agent, Proposal
from gnnlab.explore.code_edits import (
    EVALUATION_ROOT,
    CodeRepo,
    EditRejected,
    check_imports,
    check_regions,
    commit_edit,
    tree_hash,
)
from gnnlab.explore.executor import LocalExecutor
from gnnlab.explore.store import STORE_FILE

TRAINING = OPTIMIZER_REGION.file
REGION = OPTIMIZER_REGION
ADAM = "    optimizer = torch.optim.Adam(groups)\n"


@pytest.fixture
def repo(tmp_path) -> CodeRepo:
    return CodeRepo.create(tmp_path / "code")


@pytest.fixture
def evaluation_hash() -> str:
    return tree_hash(EVALUATION_ROOT)


def replace(repo: CodeRepo, revision: str, old: str, new: str) -> dict[str, str]:
    """The training file of ``revision`` with one substitution, as an agent's edit would return it."""
    text = repo.files(revision, [TRAINING])[TRAINING]
    assert old in text
    return {TRAINING: text.replace(old, new)}


def test_the_real_training_code_declares_the_optimizer_region(repo):
    base = repo.head()
    text = repo.files(repo.head(), [TRAINING])[TRAINING]
    check_regions({TRAINING: text}, replace(repo, base, ADAM, ADAM.replace("Adam", "AdamW")), [REGION])


def test_an_edit_outside_the_region_is_rejected(repo):
    base = repo.head()
    old = repo.files(repo.head(), [TRAINING])
    new = replace(repo, base, "import math\n", "import math\nimport os\n")
    with pytest.raises(EditRejected, match="outside region"):
        check_regions(old, new, [REGION])
    with pytest.raises(EditRejected, match="not an editable file"):
        check_regions(old, {**old, "gnnlab/data.py": "x = 1\n"}, [REGION])


@pytest.mark.parametrize(
    "source",
    [
        "import gnnlab.evaluation.ground_truth\n",
        "from gnnlab.evaluation import load_ground_truth as f\n",
        "from gnnlab import evaluation\n",
        "from gnnlab.data import load_record\n",
        "def f():\n    import importlib\n    return importlib.import_module('gnnlab.evaluation')\n",
    ],
)
def test_the_ast_preflight_rejects_reaching_for_ground_truth(source):
    with pytest.raises(EditRejected):
        check_imports(source, "edit.py")


def test_an_accepted_edit_is_committed_with_its_iteration_and_hypothesis(repo, evaluation_hash):
    base = repo.head()
    edit = replace(repo, base, ADAM, ADAM.replace("Adam", "AdamW"))
    revision = commit_edit(
        repo, base, edit, [REGION], message="iter 3: AdamW", evaluation_hash=evaluation_hash
    )
    assert repo.files(revision, [TRAINING]) == edit and repo.files(base, [TRAINING]) != edit
    assert repo.subject(revision) == "iter 3: AdamW"


def test_a_rejected_edit_commits_nothing(repo, evaluation_hash):
    base = repo.head()
    peek = replace(repo, base, ADAM, ADAM + "    from gnnlab.evaluation import metrics\n")
    with pytest.raises(EditRejected, match="imports gnnlab.evaluation"):
        commit_edit(repo, base, peek, [REGION], message="iter 5: peek", evaluation_hash=evaluation_hash)
    with pytest.raises(EditRejected, match="evaluation code changed"):
        commit_edit(repo, base, replace(repo, base, ADAM, ADAM), [REGION], message="m", evaluation_hash="0")
    with pytest.raises(EditRejected, match="not an editable file"):
        commit_edit(repo, base, {"gnnlab/data.py": "x = 1\n"}, [REGION], message="m", evaluation_hash="0")
    assert repo.head() == base and repo.log() == {
        "main": "base: the training code at the start of the exploration"
    }


def test_each_node_runs_in_its_own_worktree_at_its_revision(repo, tmp_path):
    base = repo.head()
    edited = repo.commit(base, replace(repo, base, ADAM, ADAM.replace("Adam", "AdamW")), "iter 1: AdamW")
    a, b = repo.worktree(base, tmp_path / "node1"), repo.worktree(edited, tmp_path / "node2")
    assert "Adam(" in (a / TRAINING).read_text() and "AdamW(" in (b / TRAINING).read_text()
    repo.remove_worktree(a)
    assert not a.exists() and (b / TRAINING).exists()


CRASH = "    optimizer = torch.optim.Adamm(groups)\n"  # AttributeError when the run builds its optimizer
BAD_BETA = "    optimizer = torch.optim.Adam(groups, betas=({}, 0.9))\n"  # ValueError: invalid beta


class ScriptedCoder(Agent):
    """At the block start, slot 0 edits the optimizer into a crash and repairs it to AdamW; slot 1 edits it
    into a crash whose repair crashes too (so it is rolled back)."""

    name = "random"  # registered in its place for the test

    def __init__(self) -> None:
        self.tracebacks: list[str] = []

    def propose(self, context, slots):
        out = []
        for slot in slots:
            code = None
            if context.code is not None:
                code = {
                    TRAINING: context.code[TRAINING].replace(ADAM, [CRASH, BAD_BETA.format(2.0)][slot.slot])
                }
            lr = {"training.learning_rate_k": 0.01 * (slot.iteration + 1)}
            out.append(Proposal(lr, None, "coder", f"hypothesis {slot.iteration}", code=code))
        return out

    def repair(self, context, node, files, traceback):
        self.tracebacks.append(traceback)
        fixed = ADAM.replace("Adam", "AdamW") if node.slot == 0 else BAD_BETA.format(3.0)
        return {TRAINING: files[TRAINING].replace([CRASH, BAD_BETA.format(2.0)][node.slot], fixed)}


def test_a_crashing_edit_is_repaired_or_rolled_back_and_each_node_ran_its_own_code(tmp_path, monkeypatch):
    coder = ScriptedCoder()
    monkeypatch.setitem(AGENTS, "random", lambda: coder)
    config = write_config(
        tmp_path / "ex.yaml", agent="random", allow_code_edits=True, max_repair_attempts=1, n_iter_block=2
    )
    out = tmp_path / "out"
    explore(
        config, out, iterations=2, executor=LocalExecutor(2), cache_dir=tmp_path / "cache", progress=False
    )
    store = Store(out / STORE_FILE)
    try:
        repaired, rolled_back = store.nodes()
        events = [(e["iteration"], e["kind"]) for e in store.events() if e["kind"] != "rejected"]
        base = store.meta("code_base")
    finally:
        store.close()
    assert repaired.status == rolled_back.status == "done"
    assert events == [(1, "repair"), (2, "repair"), (2, "rollback")]
    assert "AttributeError" in coder.tracebacks[0] and "Invalid beta parameter" in coder.tracebacks[1]
    repo = CodeRepo(out / "code")
    assert (
        repaired.code_parent == base
        and repo.subject(repaired.code_commit) == "iter 1: hypothesis 1 (repair 1)"
    )
    assert "torch.optim.AdamW(groups)" in repo.files(repaired.code_commit, [TRAINING])[TRAINING]
    assert rolled_back.code_commit == rolled_back.code_parent == base
    assert repo.log() == {
        "main": "base: the training code at the start of the exploration",
        "iter-001": "iter 1: hypothesis 1 (repair 1)",  # the crashed attempt is unnamed
    }
    # the run imported the worktree's package: its record names the DIR/code revision, not gnnlab's own
    run_record = (out / repaired.run_dir / "run.json").read_text()
    assert repaired.code_commit in run_record and base not in run_record
    crashed = out / "iterations" / "iter_001" / "attempts" / "1" / "stderr.log"
    assert "AttributeError" in crashed.read_text()  # the crashed attempt is kept beside the accepted run
    assert not (out / "iterations" / "iter_001" / "code").exists()  # the node's worktree is gone


def explore_with(agent: type[Agent], tmp_path: Path, monkeypatch, iterations: int) -> tuple:
    """A code-edit exploration by ``agent`` (scored in process): its directory, nodes and rejections."""
    monkeypatch.setitem(AGENTS, "random", agent)
    config = write_config(tmp_path / "ex.yaml", agent="random", allow_code_edits=True)
    out = tmp_path / "out"
    explore(config, out, iterations=iterations, executor=InProcessExecutor(2), progress=False)
    store = Store(out / STORE_FILE)
    try:
        return out, store.nodes(), store.events("rejected")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda text: text.replace("import math\n", "import math\nimport os\n"), "outside region"),
        (lambda text: text.replace(ADAM, ADAM + "    from gnnlab.evaluation import metrics\n"), "imports"),
    ],
)
def test_an_edit_failing_preflight_rejects_the_proposal_and_the_rule_agent_takes_the_slot(
    tmp_path, monkeypatch, edit, reason
):
    class Peeker(Agent):
        name = "random"

        def propose(self, context, slots):
            code = {TRAINING: edit(context.code[TRAINING])}
            return [Proposal({"training.learning_rate_k": 0.03}, code=code) for _ in slots]

    out, nodes, rejected = explore_with(Peeker, tmp_path, monkeypatch, iterations=2)
    assert [
        e["detail"]["reason"].startswith("code edit rejected") and reason in e["detail"]["reason"]
        for e in rejected
    ] == [True, True]
    assert all(n.agent == "rule (after rejecting random)" and not n.edited_code for n in nodes)
    assert CodeRepo(out / "code").log() == {"main": "base: the training code at the start of the exploration"}


def test_code_edits_are_refused_after_a_blocks_first_round(tmp_path, monkeypatch):
    class LateCoder(Agent):
        name = "random"

        def propose(self, context, slots):
            text = (Path(__file__).resolve().parents[1] / "src" / TRAINING).read_text()
            code = {TRAINING: text.replace(ADAM, ADAM.replace("Adam", "AdamW"))}
            return [Proposal({"training.learning_rate_k": 0.01 * s.iteration}, code=code) for s in slots]

    _, nodes, rejected = explore_with(LateCoder, tmp_path, monkeypatch, iterations=4)
    assert [n.edited_code for n in nodes] == [True, True, False, False]
    assert [e["iteration"] for e in rejected] == [3, 4]
    assert all("a block's first round" in e["detail"]["reason"] for e in rejected)
