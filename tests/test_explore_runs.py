"""The exploration with real runs: the local executor, the command line, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from explore_helpers import TINY, write_config

from gnnlab.cli import main
from gnnlab.explore import LocalExecutor, RunSpec, Store
from gnnlab.explore.store import STORE_FILE

RUN_CONFIG = yaml.safe_dump({k: v for k, v in TINY.items() if k != "explore"})


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_short_real_exploration_from_the_command_line(tmp_path, cache, capsys):
    config = write_config(tmp_path / "c.yaml", plots=True)
    out = tmp_path / "ex"
    code = main(
        [
            "explore",
            str(config),
            "--out",
            str(out),
            "--iterations",
            "4",
            "--slots",
            "2",
            "--cache",
            str(cache),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "iterations 4/4" in capsys.readouterr().out
    for name in ("analysis.md", "memory.md", "ucb_scores.txt", "protocol.md", "tree.png", "progress.png"):
        assert (out / name).is_file(), name
    for i in range(1, 5):
        folder = out / "iterations" / f"iter_{i:03d}"
        metrics = json.loads((folder / "run" / "metrics.json").read_text())
        assert metrics["status"] == "ok"
        assert (folder / "analysis.log").read_text() == (folder / "run" / "analysis.log").read_text()
        assert (folder / "plots" / "rate_constants.png").is_file()
        assert yaml.safe_load((folder / "config.yaml").read_text())["training"]["n_threads"] == 1
    assert (out / "analysis.md").read_text().count("## Iter ") == 4
    store = Store(out / STORE_FILE)
    nodes = store.nodes()
    store.close()
    run_metrics = json.loads((out / "iterations" / "iter_002" / "run" / "metrics.json").read_text())
    assert nodes[1].metrics == run_metrics


def test_a_crashing_run_is_a_failed_result_with_the_reason(tmp_path):
    executor = LocalExecutor(1)
    executor.submit(RunSpec(1, "system: nope\n", tmp_path / "iter" / "run", timeout_s=120))
    (result,) = executor.wait()
    assert result.status == "failed"
    assert result.failure.startswith("crashed (exit 2): gnnlab: error:") and "'nope'" in result.failure


def test_a_run_past_its_timeout_is_killed_and_failed(tmp_path, cache):
    executor = LocalExecutor(1, start="spawn")
    executor.submit(RunSpec(1, RUN_CONFIG, tmp_path / "iter" / "run", timeout_s=0.5, cache_dir=cache))
    (result,) = executor.wait()
    assert result.status == "failed" and result.failure == "timed out after 0.00833 min"
    assert executor.running() == []


def test_an_interrupt_while_a_run_starts_is_delivered_after_the_run_is_recorded(tmp_path, monkeypatch):
    from gnnlab.explore import executor as executor_module

    real_start_time = executor_module._start_time

    def start_time_then_interrupted(pid: int) -> str:  # SIGTERM lands between the fork and the pid file
        signal.raise_signal(signal.SIGTERM)
        return real_start_time(pid)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    monkeypatch.setattr(executor_module, "_start_time", start_time_then_interrupted)
    previous = signal.signal(signal.SIGTERM, interrupt)
    executor = LocalExecutor(1)
    try:
        with pytest.raises(KeyboardInterrupt):
            executor.submit(RunSpec(1, "system: nope\n", tmp_path / "iter" / "run", timeout_s=120))
    finally:
        signal.signal(signal.SIGTERM, previous)
    pid, started = (tmp_path / "iter" / "run.pid").read_text().split()
    assert executor.running() == [1] and started != "?"
    executor.shutdown()
    assert executor.running() == []


def _snapshot(out: Path) -> dict[int, tuple]:
    if not (out / STORE_FILE).is_file():
        return {}
    store = Store(out / STORE_FILE)
    try:
        return {n.id: (n.status, json.dumps(n.config, sort_keys=True)) for n in store.nodes()}
    finally:
        store.close()


def _kill_when(command: list[str], out: Path, condition, timeout: float = 300.0) -> dict[int, tuple]:
    log = out.parent / "loop.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = _snapshot(out)
        if condition(nodes):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return nodes
        if process.poll() is not None:
            raise AssertionError(f"the loop ended before the kill point: {log.read_text()}")
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError("kill point never reached")


def _loop_command(config: Path, out: Path, cache: Path, iterations: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gnnlab.cli", "explore", str(config), "--out", str(out),
            "--iterations", str(iterations), "--cache", str(cache), "--quiet", *extra]  # fmt: skip


def test_resume_after_sigkill_loses_and_repeats_no_iteration(tmp_path, cache):
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "ex"
    base = _loop_command(config, out, cache, 6)
    recorded: dict[int, str] = {}
    kill_points = [
        lambda nodes: any(s == "running" for s, _ in nodes.values()),  # mid-run, first round
        lambda nodes: sum(s == "done" for s, _ in nodes.values()) >= 3,  # mid-round, results half recorded
        lambda nodes: (
            sum(s == "done" for s, _ in nodes.values()) >= 4 and len(nodes) > 4
        ),  # after a block end
    ]
    for attempt, point in enumerate(kill_points):
        nodes = _kill_when(base + (["--resume"] if attempt else []), out, point)
        for node_id, (_, config_json) in nodes.items():
            assert recorded.setdefault(node_id, config_json) == config_json  # never re-proposed differently
    finished = subprocess.run(base + ["--resume"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    final = _snapshot(out)
    assert sorted(final) == [1, 2, 3, 4, 5, 6]
    assert all(status == "done" for status, _ in final.values())
    assert all(final[i][1] == recorded[i] for i in recorded)
    store = Store(out / STORE_FILE)
    versions, blocks = store.protocol_versions(), store.blocks()
    store.close()
    assert [v["block"] for v in versions] == [1]  # block 1 ended exactly once
    assert [b.block for b in blocks] == [1, 2]
    for i in range(1, 7):
        metrics = json.loads((out / "iterations" / f"iter_{i:03d}" / "run" / "metrics.json").read_text())
        assert metrics["status"] == "ok"
    assert not any(Path(f"/proc/{p}").exists() for p in _orphans(out))


def _orphans(out: Path) -> list[int]:
    pids = []
    for pid_file in out.glob("iterations/*/run.pid"):
        pid = int(pid_file.read_text().split()[0])
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            pids.append(pid)
    return pids


def test_interrupted_loop_leaves_no_run_behind(tmp_path, cache):
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "ex"
    command = _loop_command(config, out, cache, 2, "--set", "training.lbfgs_iterations=20")
    log = tmp_path / "loop.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while not any(s == "running" for s, _ in _snapshot(out).values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 130, log.read_text()
    time.sleep(0.2)
    assert _orphans(out) == []
