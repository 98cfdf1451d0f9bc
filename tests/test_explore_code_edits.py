"""Agent code edits: region and import pre-flight, repair then rollback, a worktree per node."""

from pathlib import Path

import pytest

from gnnlab.explore.code_edits import (
    CodeRegion,
    CodeRepo,
    EditRejected,
    apply_edit,
    check_imports,
    check_regions,
    tree_hash,
)

SRC = Path(__file__).resolve().parents[1] / "src"
TRAINING = "gnnlab/training/__init__.py"
REGION = CodeRegion(TRAINING, ">>> explore-region: optimizer", "<<< explore-region: optimizer")
ADAM = "    optimizer = torch.optim.Adam(groups)\n"


@pytest.fixture
def repo(tmp_path) -> CodeRepo:
    return CodeRepo.create(tmp_path / "code", SRC, [TRAINING])


@pytest.fixture
def evaluation() -> dict:
    root = SRC / "gnnlab" / "evaluation"
    return {"evaluation_root": root, "evaluation_hash": tree_hash(root)}


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


def test_a_crash_is_repaired_and_committed_with_its_iteration_and_hypothesis(repo, evaluation):
    base = repo.head()
    edits = iter([ADAM.replace("Adam(", "Adamm("), ADAM.replace("Adam", "AdamW")])
    seen: list[str | None] = []

    def edit(traceback):
        seen.append(traceback)
        return replace(repo, base, ADAM, next(edits))

    def run(revision):
        text = repo.files(revision, [TRAINING])[TRAINING]
        return "Traceback...\nAttributeError: no attribute 'Adamm'" if "Adamm" in text else None

    outcome = apply_edit(
        repo,
        base,
        [REGION],
        edit,
        run,
        message="iter 3: AdamW decouples weight decay",
        max_repair_attempts=2,
        **evaluation,
    )
    assert outcome.accepted and outcome.attempts == 2 and outcome.revision == repo.head()
    assert seen[0] is None and "AttributeError" in seen[1]  # the repair saw the traceback
    assert repo.log() == [
        "base: the training code at the start of the exploration",
        "iter 3: AdamW decouples weight decay (repair 1)",  # the crashed attempt is not on main
    ]


def test_repeated_crashes_roll_back_to_the_parents_code(repo, evaluation):
    base = repo.head()
    ran: list[str] = []

    def run(revision):
        ran.append(revision)
        return None if revision == base else "RuntimeError: boom"

    outcome = apply_edit(
        repo,
        base,
        [REGION],
        lambda tb: replace(repo, base, ADAM, ADAM.replace("Adam", "SGD")),
        run,
        message="iter 4: SGD",
        max_repair_attempts=1,
        **evaluation,
    )
    assert not outcome.accepted and outcome.revision == base == repo.head() and ran[-1] == base
    assert outcome.reasons[-1] == "rolled back to the parent's code" and len(ran) == 3


def test_a_rejected_edit_is_never_run(repo, evaluation):
    base, ran = repo.head(), []
    outcome = apply_edit(
        repo,
        base,
        [REGION],
        lambda tb: replace(repo, base, ADAM, ADAM + "    from gnnlab.evaluation import metrics\n"),
        lambda rev: ran.append(rev),
        message="iter 5: peek",
        max_repair_attempts=1,
        **evaluation,
    )
    assert not outcome.accepted and ran == [outcome.revision]  # only the parent's code ran
    assert all(r.startswith("rejected: ") for r in outcome.reasons[:-1])


def test_each_node_runs_in_its_own_worktree_at_its_revision(repo, tmp_path):
    base = repo.head()
    edited = repo.commit(base, replace(repo, base, ADAM, ADAM.replace("Adam", "AdamW")), "iter 1: AdamW")
    a, b = repo.worktree(base, tmp_path / "node1"), repo.worktree(edited, tmp_path / "node2")
    assert "Adam(" in (a / TRAINING).read_text() and "AdamW(" in (b / TRAINING).read_text()
    repo.remove_worktree(a)
    assert not a.exists() and (b / TRAINING).exists()
