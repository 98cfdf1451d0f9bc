"""Code edits by an agent: a git history of the gnnlab package inside the exploration directory.

Why git: every accepted edit is a commit named after its iteration and hypothesis, a node records the
revision it ran (``nodes.code_commit``), and a rollback is a checkout of the parent's revision — so
``replay`` can run each node on exactly its code. ``DIR/code`` holds a copy of the whole ``gnnlab`` package
(a few hundred kB), so a node's worktree (``git worktree add --detach``) is a complete package: the run is
started in a fresh interpreter with the worktree first on ``PYTHONPATH`` and imports the edited code, while
concurrent slots never see each other's edits.

An edit is never trusted. :func:`preflight` checks, before anything runs, that

* the text outside every declared region (between its start and end marker lines) is unchanged, and each
  marker occurs exactly once;
* the edited modules import nothing from ``gnnlab.evaluation`` (where ground truth is loaded) nor the
  ground-truth loaders of ``gnnlab.data`` (checked on the ``ast``, so aliasing or formatting cannot hide it);
* the evaluation code is byte-identical to when the exploration started (its recorded hash).

The loop (``explore/loop.py``) drives the rest: a crashing edit gets up to ``explore.max_repair_attempts``
repairs (the agent sees the traceback), after which the node rolls back to its parent's revision.
"""

import ast
import hashlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import gnnlab
from gnnlab.config.explore import CodeRegion
from gnnlab.errors import GnnlabError

FORBIDDEN_MODULES = ("gnnlab.evaluation",)
FORBIDDEN_NAMES = {"gnnlab.data": ("GROUND_TRUTH_FILE", "load_record")}


class EditRejected(GnnlabError):
    """An edit failed pre-flight; the reason says which check."""


# the installed package's source root (the directory holding gnnlab/): what DIR/code starts as
SOURCE_ROOT = Path(gnnlab.__file__).resolve().parent.parent
EVALUATION_ROOT = SOURCE_ROOT / "gnnlab" / "evaluation"


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
    def create(cls, root: Path, source_root: Path = SOURCE_ROOT) -> "CodeRepo":
        """Copy the ``gnnlab`` package's ``*.py`` files under ``source_root`` into a fresh repository and
        commit them as the base (byte-code caches ignored, so a run leaves its worktree clean)."""
        repo = cls(root)
        for path in sorted((source_root / "gnnlab").rglob("*.py")):
            name = path.relative_to(source_root)
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / name)
        (root / ".gitignore").write_text("__pycache__/\n")
        repo._git("init", "-q", "-b", "main")
        repo._git("add", "-A")
        repo._git("commit", "-q", "-m", "base: the training code at the start of the exploration")
        return repo

    def head(self) -> str:
        return self._git("rev-parse", "HEAD")

    def files(self, revision: str, names: Sequence[str]) -> dict[str, str]:
        return {name: self._git("show", f"{revision}:{name}", strip=False) for name in names}

    def commit(self, parent: str, files: Mapping[str, str], message: str) -> str:
        """A commit of ``files`` on top of ``parent``; returns its revision. Nothing points at it until
        :meth:`keep` names it: the code history is a tree, like the exploration's, and a crashed attempt
        that was repaired or rolled back is left unnamed."""
        self._git("checkout", "-q", "--detach", parent)
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
        """Delete a node's checkout (also one a killed loop left half-registered) and forget it."""
        shutil.rmtree(path, ignore_errors=True)
        self._git("worktree", "prune")

    def keep(self, iteration: int, revision: str) -> None:
        """Name a node's accepted code: branch ``iter-NNN``."""
        self._git("branch", "-f", f"iter-{iteration:03d}", revision)

    def subject(self, revision: str) -> str:
        return self._git("log", "-1", "--format=%s", revision)

    def log(self) -> dict[str, str]:
        """Branch -> the subject of its commit: the base (``main``) and every node's accepted edit."""
        lines = self._git("for-each-ref", "--format=%(refname:short)\t%(subject)", "refs/heads").splitlines()
        return dict(line.split("\t", 1) for line in lines)


def commit_edit(
    repo: CodeRepo,
    parent: str,
    edited: Mapping[str, str],
    regions: Sequence[CodeRegion],
    *,
    message: str,
    evaluation_hash: str,
    evaluation_root: Path = EVALUATION_ROOT,
) -> str:
    """Pre-flight ``edited`` (file -> full new text) against ``parent``'s files and commit it on top of
    ``parent``; returns the new revision, or raises :class:`EditRejected` and commits nothing."""
    editable = sorted({r.file for r in regions})
    outside = sorted(set(edited) - set(editable))
    if outside:
        raise EditRejected(f"{outside[0]}: not an editable file")
    old = repo.files(parent, editable)
    new = {**old, **edited}
    preflight(old, new, regions, evaluation_root=evaluation_root, evaluation_hash=evaluation_hash)
    return repo.commit(parent, {name: new[name] for name in edited}, message)


__all__ = [
    "CodeRegion",
    "CodeRepo",
    "EVALUATION_ROOT",
    "SOURCE_ROOT",
    "EditRejected",
    "commit_edit",
    "check_imports",
    "check_regions",
    "preflight",
    "tree_hash",
]
