"""The exploration's single source of truth: a SQLite database in the output directory.

Every write is one transaction and the journal is WAL, so a loop killed at any instant leaves the store at the
last committed state: a proposal round is recorded whole or not at all, a result is recorded with its
status in one statement. Markdown files are rendered *from* the store and never parsed back.

Tables: ``meta`` (the spec, the base config, loop settings), ``nodes`` (one row per iteration), ``blocks``
(block-end summaries, rules, regime), ``protocol_versions`` (each rewrite of the rules, as a diff) and
``events`` (rejected proposals and other things worth keeping) and ``llm_calls`` (every call an LLM agent
made: what it was shown, what it answered, tokens, cost, latency, error).
"""

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STORE_FILE = "explore.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY,            -- the iteration number, 1-based; 0 is the (virtual) root
    block INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    parent INTEGER,                    -- NULL: the block's root config
    robust_of INTEGER,                 -- a re-run of that node with another training seed
    config TEXT NOT NULL,              -- the full resolved run config (JSON)
    mutation TEXT NOT NULL,            -- dotted key -> value, relative to the parent (JSON)
    strategy TEXT NOT NULL,
    rationale TEXT NOT NULL,
    agent TEXT NOT NULL,
    training_seed INTEGER NOT NULL,
    simulation_seed INTEGER NOT NULL,
    code_revision TEXT NOT NULL,       -- the gnnlab source the loop ran from (git commit, or version)
    code_commit TEXT,                  -- code edits on: the DIR/code revision the node runs
    code_parent TEXT,                  -- ... and its parent's revision (the node edited code if they differ)
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    failure TEXT,
    metrics TEXT,                      -- JSON, as the run's metrics.json holds them
    run_dir TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    run_seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    agent_input TEXT,
    agent_output TEXT
);
CREATE TABLE IF NOT EXISTS blocks (
    block INTEGER PRIMARY KEY,
    regime TEXT,
    root_config TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    summary TEXT,
    rules TEXT
);
CREATE TABLE IF NOT EXISTS protocol_versions (
    version INTEGER PRIMARY KEY,
    block INTEGER NOT NULL,
    rules TEXT NOT NULL,
    diff TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    iteration INTEGER,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    iteration INTEGER,                 -- the first iteration of the round the call proposed for
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,              -- JSON: system, user, image file names (workspace-relative)
    reply TEXT,                        -- the reply's text or tool input (JSON); NULL when the call failed
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_s REAL NOT NULL,
    error TEXT                         -- why the call or its reply was rejected; NULL when accepted
);
"""

FINISHED = ("done", "failed")


@dataclasses.dataclass(frozen=True)
class Node:
    """One iteration of the exploration: a run config, where it came from, and what it gave."""

    id: int
    block: int
    slot: int
    parent: int | None
    robust_of: int | None
    config: dict[str, Any]
    mutation: dict[str, Any]
    strategy: str
    rationale: str
    agent: str
    training_seed: int
    simulation_seed: int
    code_revision: str
    code_commit: str | None
    code_parent: str | None
    status: str
    failure: str | None
    metrics: dict[str, Any] | None
    run_dir: str
    created: float
    started: float | None
    finished: float | None
    run_seconds: float | None
    attempts: int
    agent_input: str | None
    agent_output: str | None

    @property
    def edited_code(self) -> bool:
        """The node runs code it edited itself (not only inherited from its parent)."""
        return self.code_commit != self.code_parent

    @property
    def finished_ok(self) -> bool:
        return self.status == "done"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


_JSON_COLUMNS = ("config", "mutation", "metrics")


def _node(row: sqlite3.Row) -> Node:
    values = dict(row)
    for key in _JSON_COLUMNS:
        if values[key] is not None:
            values[key] = json.loads(values[key])
    return Node(**values)


@dataclasses.dataclass(frozen=True)
class BlockRecord:
    block: int
    regime: str | None
    root_config: dict[str, Any]
    started: float
    ended: float | None
    summary: dict[str, Any] | None
    rules: dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class LLMCall:
    """One model call as recorded (field order = the table's columns after ``time``)."""

    iteration: int | None
    backend: str
    model: str
    prompt: str
    reply: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    error: str | None


class Store:
    """Typed access to the exploration database. One connection per process; not shared across threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        columns = {r["name"] for r in self.db.execute("PRAGMA table_info(nodes)")}
        for column in ("code_commit", "code_parent"):  # stores written before code edits existed
            if column not in columns:
                self.db.execute(f"ALTER TABLE nodes ADD COLUMN {column} TEXT")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together, or none do."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------------------------
    def set_meta(self, **values: Any) -> None:
        with self.transaction() as db:
            for key, value in values.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    # --- nodes ------------------------------------------------------------------------------------------
    def add_nodes(self, rows: list[dict[str, Any]]) -> None:
        """Insert a round of new (pending) nodes in one transaction."""
        now = time.time()
        with self.transaction() as db:
            for row in rows:
                values = {**row, "status": "pending", "created": now}
                for key in _JSON_COLUMNS:
                    if key in values and values[key] is not None:
                        values[key] = json.dumps(values[key], sort_keys=True)
                columns = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                db.execute(f"INSERT INTO nodes ({columns}) VALUES ({marks})", tuple(values.values()))

    def mark_running(self, node_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE nodes SET status = 'running', started = ?, attempts = attempts + 1 WHERE id = ?",
                (time.time(), node_id),
            )

    def record_result(
        self,
        node_id: int,
        *,
        status: str,
        metrics: dict[str, Any] | None,
        failure: str | None,
        run_seconds: float,
    ) -> None:
        if status not in FINISHED:
            raise ValueError(f"a result's status must be done or failed, got {status!r}")
        with self.transaction() as db:
            db.execute(
                "UPDATE nodes SET status = ?, metrics = ?, failure = ?, finished = ?, run_seconds = ? "
                "WHERE id = ?",
                (
                    status,
                    None if metrics is None else json.dumps(metrics, sort_keys=True),
                    failure,
                    time.time(),
                    run_seconds,
                    node_id,
                ),
            )

    def requeue(self, node_id: int, code_commit: str, event: str, detail: dict[str, Any]) -> None:
        """Send a node back to 'pending' on another code revision (a repair or a rollback), with the event
        that says why, in one transaction: the crashed attempt survives in the event and its run folder."""
        with self.transaction() as db:
            db.execute(
                "UPDATE nodes SET status = 'pending', code_commit = ?, metrics = NULL, failure = NULL, "
                "finished = NULL, run_seconds = NULL WHERE id = ?",
                (code_commit, node_id),
            )
            db.execute(
                "INSERT INTO events (time, iteration, kind, detail) VALUES (?, ?, ?, ?)",
                (time.time(), node_id, event, json.dumps(detail, sort_keys=True, default=str)),
            )

    def nodes(self) -> list[Node]:
        return [_node(r) for r in self.db.execute("SELECT * FROM nodes ORDER BY id")]

    def node(self, node_id: int) -> Node:
        row = self.db.execute("SELECT * FROM nodes WHERE id = ?", (node_id,)).fetchone()
        if row is None:
            raise KeyError(node_id)
        return _node(row)

    def unfinished(self) -> list[Node]:
        return [n for n in self.nodes() if not n.is_finished]

    # --- blocks -----------------------------------------------------------------------------------------
    def start_block(self, block: int, root_config: dict[str, Any], regime: str | None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO blocks (block, regime, root_config, started) VALUES (?, ?, ?, ?)",
                (block, regime, json.dumps(root_config, sort_keys=True), time.time()),
            )

    def end_block(self, block: int, summary: dict[str, Any], rules: dict[str, Any], diff: str) -> None:
        """Record a block's end, and the protocol version it produced, in one transaction."""
        with self.transaction() as db:
            db.execute(
                "UPDATE blocks SET ended = ?, summary = ?, rules = ? WHERE block = ?",
                (time.time(), json.dumps(summary, sort_keys=True), json.dumps(rules, sort_keys=True), block),
            )
            version = db.execute("SELECT COUNT(*) FROM protocol_versions").fetchone()[0] + 1
            db.execute(
                "INSERT INTO protocol_versions VALUES (?, ?, ?, ?, ?)",
                (version, block, json.dumps(rules, sort_keys=True), diff, time.time()),
            )

    def blocks(self) -> list[BlockRecord]:
        out = []
        for row in self.db.execute("SELECT * FROM blocks ORDER BY block"):
            values = dict(row)
            for key in ("root_config", "summary", "rules"):
                if values[key] is not None:
                    values[key] = json.loads(values[key])
            out.append(BlockRecord(**values))
        return out

    def protocol_versions(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM protocol_versions ORDER BY version")
        return [{**dict(r), "rules": json.loads(r["rules"])} for r in rows]

    # --- events -----------------------------------------------------------------------------------------
    def log_event(self, kind: str, detail: dict[str, Any], iteration: int | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events (time, iteration, kind, detail) VALUES (?, ?, ?, ?)",
                (time.time(), iteration, kind, json.dumps(detail, sort_keys=True, default=str)),
            )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM events ORDER BY id", ()
        if kind is not None:
            query, args = "SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,)
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in self.db.execute(query, args)]

    # --- llm calls --------------------------------------------------------------------------------------
    def record_llm_call(self, call: LLMCall) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO llm_calls (time, iteration, backend, model, prompt, reply, input_tokens, "
                "output_tokens, cost_usd, latency_s, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), *dataclasses.astuple(call)),
            )

    def llm_calls(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM llm_calls ORDER BY id")]

    def llm_spent_usd(self) -> float:
        return float(self.db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM llm_calls").fetchone()[0])


__all__ = ["FINISHED", "STORE_FILE", "BlockRecord", "LLMCall", "Node", "Store"]
