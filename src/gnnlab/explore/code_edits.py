"""Code edits by an agent: a git history of the editable training code inside the exploration directory.

Why git: every accepted edit is a commit named after its iteration and hypothesis, a node records the
revision it ran (``nodes.code_revision``), and a rollback is a checkout of the parent's revision — so
``replay`` can run each node on exactly its code. A running node gets its own worktree (``git worktree add
--detach``), so concurrent slots never see each other's edits; the run puts that worktree first on its
import path (an overlay of the edited modules over the installed package).

An edit is never trusted. :func:`preflight` checks, before anything runs, that

* the text outside every declared region (between its start and end marker lines) is unchanged, and each
  marker occurs exactly once — edits happen only at block boundaries;
* the edited modules import nothing from ``gnnlab.evaluation`` (where ground truth is loaded) nor the
  ground-truth loaders of ``gnnlab.data`` (checked on the ``ast``, so aliasing or formatting cannot hide it);
* the evaluation code is byte-identical to when the exploration started (its recorded hash).

A crashing edit gets up to ``max_repair_attempts`` repairs (the agent sees the traceback); after that the
node falls back to its parent's revision.
"""

import ast
import dataclasses
import hashlib
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gnnlab.errors import GnnlabError

FORBIDDEN_MODULES = ("gnnlab.evaluation",)
FORBIDDEN_NAMES = {"gnnlab.data": ("GROUND_TRUTH_FILE", "load_record")}


class EditRejected(GnnlabError):
    """An edit failed pre-flight; the reason says which check."""


@dataclasses.dataclass(frozen=True)
class CodeRegion:
    """The editable lines of ``file`` (relative to the code root): strictly between the marker lines."""

    file: str
    start: str
    end: str


def _split(text: str, region: CodeRegion) -> tuple[str, str]:
    """The text before the region (through the start marker) and after it (from the end marker)."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if region.start in line]
    ends = [i for i, line in enumerate(lines) if region.end in line]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise EditRejected(f"{region.file}: the markers of region {region.start!r} must occur once, in order")
    return "".join(lines[: starts[0] + 1]), "".join(lines[ends[0] :])


def check_regions(old: Mapping[str, str], new: Mapping[str, str], regions: Sequence[CodeRegion]) -> None:
    """Only region bodies changed, only in files that declare regions."""
    editable = {r.file for r in regions}
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name) and name not in editable:
            raise EditRejected(f"{name}: not an editable file")
    for region in regions:
        if _split(old[region.file], region) != _split(new[region.file], region):
            raise EditRejected(f"{region.file}: changed outside region {region.start!r}..{region.end!r}")


def check_imports(source: str, name: str) -> None:
    """Reject imports of the evaluation package or of the ground-truth loaders."""
    for node in ast.walk(ast.parse(source, filename=name)):
        modules: list[tuple[str, tuple[str, ...]]] = []
        if isinstance(node, ast.Import):
            modules = [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [(node.module, tuple(alias.name for alias in node.names))]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "__import__",
            "import_module",
        ):
            modules = [(str(a.value), ()) for a in node.args if isinstance(a, ast.Constant)]
        for module, names in modules:
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN_MODULES):
                raise EditRejected(f"{name}: imports {module}")
            if module == "gnnlab" and "evaluation" in names:
                raise EditRejected(f"{name}: imports gnnlab.evaluation")
            if set(names) & set(FORBIDDEN_NAMES.get(module, ())):
                raise EditRejected(f"{name}: imports a ground-truth loader from {module}")


def tree_hash(root: Path) -> str:
    """SHA-256 over the ``*.py`` files under ``root`` (paths and bytes): the evaluation code's fingerprint."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def preflight(
    old: Mapping[str, str],
    new: Mapping[str, str],
    regions: Sequence[CodeRegion],
    *,
    evaluation_root: Path,
    evaluation_hash: str,
) -> None:
    """All checks of the module docstring; raises :class:`EditRejected` on the first that fails."""
    check_regions(old, new, regions)
    for name, source in new.items():
        check_imports(source, name)
    if tree_hash(evaluation_root) != evaluation_hash:
        raise EditRejected("the evaluation code changed since the exploration started")


class CodeRepo:
    """``DIR/code``: a git repository of the editable files, one commit per accepted edit."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _git(self, *args: str, strip: bool = True) -> str:
        out = subprocess.run(
            ["git", "-c", "user.name=gnnlab", "-c", "user.email=gnnlab@localhost", *args],
            cwd=self.root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip() if strip else out

    @classmethod
    def create(cls, root: Path, source_root: Path, files: Sequence[str]) -> "CodeRepo":
        """Copy ``files`` (relative to ``source_root``) into a fresh repository; commit them as the base."""
        repo = cls(root)
        for name in files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_root / name, root / name)
        repo._git("init", "-q", "-b", "main")
        repo._git("add", "-A")
        repo._git("commit", "-q", "-m", "base: the training code at the start of the exploration")
        return repo

    def head(self) -> str:
        return self._git("rev-parse", "HEAD")

    def files(self, revision: str, names: Sequence[str]) -> dict[str, str]:
        return {name: self._git("show", f"{revision}:{name}", strip=False) for name in names}

    def reset(self, revision: str) -> None:
        """Branch ``main`` and the checkout back at ``revision`` (a rollback)."""
        self._git("checkout", "-q", "-B", "main", revision)

    def commit(self, parent: str, files: Mapping[str, str], message: str) -> str:
        """A commit of ``files`` on top of ``parent`` (branch ``main`` follows); returns its revision."""
        self.reset(parent)
        for name, text in files.items():
            (self.root / name).write_text(text)
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        return self.head()

    def worktree(self, revision: str, path: Path) -> Path:
        """A detached checkout of ``revision`` for one running node (removed with :meth:`remove_worktree`)."""
        self._git("worktree", "add", "-q", "--detach", str(path), revision)
        return path

    def remove_worktree(self, path: Path) -> None:
        self._git("worktree", "remove", "--force", str(path))

    def log(self) -> list[str]:
        """Commit subjects, oldest first."""
        return self._git("log", "--reverse", "--format=%s").splitlines()


# edit(traceback of the last crash, or None) -> the edited files; run(revision) -> None or a traceback
Edit = Callable[[str | None], Mapping[str, str]]
Run = Callable[[str], str | None]


@dataclasses.dataclass(frozen=True)
class EditOutcome:
    revision: str  # what the node ran last: the accepted edit, or the parent's after a rollback
    accepted: bool
    attempts: int
    reasons: tuple[str, ...]


def apply_edit(
    repo: CodeRepo,
    parent: str,
    regions: Sequence[CodeRegion],
    edit: Edit,
    run: Run,
    *,
    message: str,
    max_repair_attempts: int,
    evaluation_root: Path,
    evaluation_hash: str,
) -> EditOutcome:
    """Edit, pre-flight, commit and run; repair a crash up to ``max_repair_attempts`` times, then roll back.

    Every attempt is committed on top of ``parent``, so branch ``main`` holds accepted code only: a crashed
    attempt is replaced by its repair, and after the last failed repair ``main`` is reset to ``parent`` and
    the parent's code is run instead. The outcome's reasons say what was tried and why it failed.
    """
    names = sorted({r.file for r in regions})
    old = repo.files(parent, names)
    traceback: str | None = None
    reasons: list[str] = []
    for attempt in range(1 + max_repair_attempts):
        new = {**old, **edit(traceback)}
        try:
            preflight(old, new, regions, evaluation_root=evaluation_root, evaluation_hash=evaluation_hash)
        except EditRejected as error:
            reasons.append(f"rejected: {error}")
            traceback = str(error)
            continue
        label = message if attempt == 0 else f"{message} (repair {attempt})"
        revision = repo.commit(parent, new, label)
        traceback = run(revision)
        if traceback is None:
            return EditOutcome(revision, True, attempt + 1, tuple(reasons))
        reasons.append(f"crashed: {traceback.strip().splitlines()[-1] if traceback.strip() else 'no output'}")
    repo.reset(parent)
    run(parent)
    return EditOutcome(parent, False, 1 + max_repair_attempts, (*reasons, "rolled back to the parent's code"))


__all__ = [
    "CodeRegion",
    "CodeRepo",
    "EditOutcome",
    "EditRejected",
    "apply_edit",
    "check_imports",
    "check_regions",
    "preflight",
    "tree_hash",
]
