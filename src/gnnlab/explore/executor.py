"""Executors run the loop's runs. The loop only submits :class:`RunSpec` and collects :class:`RunResult`, so a
distributed engine (Ray, SLURM) is a second implementation of :class:`Executor`, not a change to the loop.

Contract:

* :meth:`Executor.submit` starts one run and returns at once. A spec is self-contained: the run config as
  YAML text, the run directory, the dataset cache, a timeout. What runs is ``gnnlab run CONFIG --out
  RUN_DIR``, whose run directory is an immutable record; re-submitting a spec whose run finished returns
  that record's metrics without training again.
* :meth:`Executor.wait` blocks until at least one submitted run has finished (or ``timeout`` passed) and
  returns the results of all runs finished since the last call. Every submitted run yields exactly one
  result: a crash, a diverged run and a timeout are results with status ``failed`` and a reason, never
  exceptions.
* A spec with ``code_dir`` runs the ``gnnlab`` package found there (an agent's code edit), not the
  installed one, in a fresh interpreter.
* :meth:`Executor.shutdown` stops every run still going (the loop calls it when it is itself stopped).
"""

import abc
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class RunSpec:
    node: int
    config_yaml: str
    run_dir: Path
    timeout_s: float
    cache_dir: Path | None = None
    plots: bool = True
    code_dir: Path | None = None  # a worktree holding an edited gnnlab package: the run must import it


@dataclasses.dataclass(frozen=True)
class RunResult:
    node: int
    status: str  # "done" or "failed"
    metrics: dict[str, Any] | None
    failure: str | None
    seconds: float


def read_result(spec: RunSpec, seconds: float, returncode: int | None, stderr_tail: str) -> RunResult:
    """Turn a finished run directory (and how its process ended) into a result."""
    metrics_file = spec.run_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        status = metrics.get("status")
        if status == "ok":
            return RunResult(spec.node, "done", metrics, None, seconds)
        return RunResult(
            spec.node, "failed", metrics, f"{status}: {metrics.get('message', '')}".strip(), seconds
        )
    lines = [line for line in stderr_tail.splitlines() if line.strip()]
    reason = lines[-1].strip() if lines else "no metrics.json and nothing on stderr"
    return RunResult(spec.node, "failed", None, f"crashed (exit {returncode}): {reason}", seconds)


class Executor(abc.ABC):
    """Runs specs concurrently; see the module docstring for the contract."""

    slots: int

    @abc.abstractmethod
    def submit(self, spec: RunSpec) -> None: ...

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[RunResult]: ...

    @abc.abstractmethod
    def running(self) -> list[int]:
        """Node ids of the runs still going."""

    @abc.abstractmethod
    def shutdown(self) -> None: ...


# Set by the command's SIGTERM/SIGINT handler. The handler also raises KeyboardInterrupt, but an exception
# raised inside one of fork's Python hooks (logging registers some) is ignored by the interpreter.
STOP = threading.Event()


@dataclasses.dataclass
class _Process:
    spec: RunSpec
    pid: int
    started: float
    popen: subprocess.Popen | None = None  # spawn mode: Popen reaps its own child

    def poll(self) -> int | None:
        """The exit code once the process has ended (reaping it), else None."""
        if self.popen is not None:
            return self.popen.poll()
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return None if pid == 0 else os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.popen is not None:
            self.popen.wait()
            return
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


class LocalExecutor(Executor):
    """Runs on this machine, each in its own process group (a timeout kills the whole group), with the
    cores divided between the slots and stdout/stderr kept in the run's iteration folder.

    ``start="fork"`` (default) forks the loop process, which has gnnlab and torch imported already: a run
    starts in milliseconds instead of paying ~5-10 s of imports. ``start="spawn"`` runs ``python -m
    gnnlab.cli run`` in a fresh interpreter instead (for code that must be imported anew, such as edited
    training code); a spec with ``code_dir`` is always spawned, with that directory first on ``PYTHONPATH``.
    """

    def __init__(self, slots: int, *, cores: int | None = None, start: str = "fork", poll_s: float = 0.1):
        if start not in ("fork", "spawn"):
            raise ValueError(f"start must be 'fork' or 'spawn' (got {start!r})")
        self.slots = slots
        self.threads = max(1, (cores or os.cpu_count() or 1) // slots)
        self.start = start
        self.poll_s = poll_s
        self._running: dict[int, _Process] = {}

    def _command(self, spec: RunSpec, config_path: Path) -> list[str]:
        args = ["run", str(config_path), "--out", str(spec.run_dir), "--quiet"]
        if spec.cache_dir is not None:
            args += ["--cache", str(spec.cache_dir)]
        if not spec.plots:
            args.append("--no-plots")
        return args

    def submit(self, spec: RunSpec) -> None:
        folder = spec.run_dir.parent
        folder.mkdir(parents=True, exist_ok=True)
        _kill_orphan(folder / "run.pid")
        config_path = folder / "config.yaml"
        config_path.write_text(spec.config_yaml)
        args = self._command(spec, config_path)
        with _interrupts_held():
            self._start(spec, args, folder)

    def _start(self, spec: RunSpec, args: list[str], folder: Path) -> None:
        popen = None
        if self.start == "fork" and spec.code_dir is None:
            pid = _fork_run(args, folder, self.threads)
        else:
            env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
            if spec.code_dir is not None:
                env["PYTHONPATH"] = os.pathsep.join([str(spec.code_dir), env.get("PYTHONPATH", "")]).rstrip(
                    os.pathsep
                )
            with open(folder / "stdout.log", "w") as out, open(folder / "stderr.log", "w") as err:
                popen = subprocess.Popen(
                    [sys.executable, "-m", "gnnlab.cli", *args],
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            pid = popen.pid
        (folder / "run.pid").write_text(f"{pid} {_start_time(pid)}")
        self._running[spec.node] = _Process(spec, pid, time.monotonic(), popen)

    def running(self) -> list[int]:
        return sorted(self._running)

    def wait(self, timeout: float | None = None) -> list[RunResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._running:
            if STOP.is_set():  # an interrupt whose exception a fork hook swallowed still stops the loop
                raise KeyboardInterrupt
            finished = self._collect()
            if finished:
                return finished
            if deadline is not None and time.monotonic() >= deadline:
                return []
            time.sleep(self.poll_s)
        return []

    def _collect(self) -> list[RunResult]:
        results = []
        for node, proc in list(self._running.items()):
            elapsed = time.monotonic() - proc.started
            code = proc.poll()
            if code is None and elapsed <= proc.spec.timeout_s:
                continue
            del self._running[node]
            if code is None:  # still running past its timeout
                proc.kill()
                minutes = proc.spec.timeout_s / 60
                results.append(RunResult(node, "failed", None, f"timed out after {minutes:.3g} min", elapsed))
                continue
            tail = (proc.spec.run_dir.parent / "stderr.log").read_text(errors="replace")[-4000:]
            results.append(read_result(proc.spec, elapsed, code, tail))
        return results

    def shutdown(self) -> None:
        for proc in self._running.values():
            proc.kill()
        self._running.clear()


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is done, then deliver them. A run is started, its pid file written
    and it is registered for :meth:`LocalExecutor.shutdown` as one step: an interrupt in between would leave
    a run that no one kills (or an empty pid file). Python runs signal handlers in the main thread only, so
    elsewhere there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in stops}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        signal.raise_signal(caught[0])


def _fork_run(args: list[str], folder: Path, threads: int) -> int:
    """Fork a child that becomes a session leader, sends its output to the folder's logs and runs the CLI."""
    stdout = os.open(folder / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    stderr = os.open(folder / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    # An interrupt landing inside fork's own hooks would be swallowed there: hold it until fork is done.
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    pid = os.fork()
    if pid:
        os.close(stdout)
        os.close(stderr)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        os.setsid()
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the child exits right after
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
        from gnnlab.cli import main

        code = main(args)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _start_time(pid: int) -> str:
    """The kernel's start time of a process (field 22 of /proc/PID/stat): with the pid, an identity that a
    recycled pid does not share."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def _kill_orphan(pid_file: Path) -> None:
    """Kill a run left behind by a loop that was itself killed, before its run is started again (the pid is
    trusted only if the process still has the start time recorded with it)."""
    if not pid_file.is_file():
        return
    try:
        pid_text, started = pid_file.read_text().split()
        pid = int(pid_text)
    except ValueError:
        return
    if started == "?" or _start_time(pid) != started:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        if _start_time(pid) != started or _state(pid) == "Z":
            return
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


__all__ = ["Executor", "LocalExecutor", "RunResult", "RunSpec", "read_result"]
