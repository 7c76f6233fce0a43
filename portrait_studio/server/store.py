"""The job API's job store: one SQLite table under the data folder, safe across restarts.

A job is queued, then running, then done, failed or cancelled. A server that stops (or is killed)
while a job runs leaves it `running` in the table; `recover()` at the next start puts it back in the
queue for another attempt (up to MAX_ATTEMPTS), so nothing queued is dropped and nothing finished is
touched.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATES = ("done", "failed", "cancelled")
MAX_ATTEMPTS = 3  # starts of one job (a server dying mid-render counts as one)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT '',
    progress REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL,
    inputs TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
"""


@dataclass(frozen=True)
class JobRow:
    """One job as stored."""

    id: str  # random hex id
    status: JobState  # queued, running, done, failed, cancelled
    stage: str  # current render stage ("face", "driver", "render", "mux") while running
    progress: float  # 0..1 within the job
    error: str  # why it failed (or was retried)
    options: dict[str, Any]  # render options by long name (JSON values)
    inputs: dict[str, str]  # uploaded files by field name -> file name in the job's folder
    attempts: int  # how many times it has started
    created: float  # epoch seconds
    started: float | None  # epoch seconds of the latest start
    finished: float | None  # epoch seconds it ended


class JobStore:
    """Thread-safe access to the jobs table (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def add(self, job_id: str, options: dict[str, Any], inputs: dict[str, str]) -> None:
        self._exec("INSERT INTO jobs (id, status, options, inputs, created) VALUES (?, 'queued', ?, ?, ?)",
                   (job_id, json.dumps(options), json.dumps(inputs), time.time()))

    def get(self, job_id: str) -> JobRow | None:
        row = self._exec("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row(row) if row is not None else None

    def list(self, limit: int = 100, offset: int = 0) -> list[JobRow]:
        rows = self._exec("SELECT * FROM jobs ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?", (limit, offset))
        return [_row(r) for r in rows.fetchall()]

    def counts(self) -> dict[str, int]:
        rows = self._exec("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {r[0]: r[1] for r in rows}

    def claim_next(self) -> JobRow | None:
        """Mark the oldest queued job running (one more attempt) and return it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created, rowid LIMIT 1"
                                       ).fetchone()
                if row is not None:
                    self._db.execute("UPDATE jobs SET status = 'running', stage = '', progress = 0, "
                                     "attempts = attempts + 1, started = ? WHERE id = ?", (time.time(), row[0]))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(row[0]) if row is not None else None

    def set_progress(self, job_id: str, stage: str, progress: float) -> None:
        self._exec("UPDATE jobs SET stage = ?, progress = ? WHERE id = ? AND status = 'running'",
                   (stage[:40], max(0.0, min(1.0, progress)), job_id))

    def finish(self, job_id: str, status: JobState, error: str = "") -> None:
        """Record a running job's end."""
        self._exec("UPDATE jobs SET status = ?, error = ?, finished = ?, progress = CASE WHEN ? = 'done' THEN 1 "
                   "ELSE progress END WHERE id = ? AND status = 'running'",
                   (status, error, time.time(), status, job_id))

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False when it is not queued."""
        cur = self._exec("UPDATE jobs SET status = 'cancelled', error = 'cancelled', finished = ? "
                         "WHERE id = ? AND status = 'queued'", (time.time(), job_id))
        return cur.rowcount == 1

    def requeue(self, job_id: str, note: str) -> None:
        """Put a running job back in the queue (the server is stopping); its attempt is not counted."""
        self._exec("UPDATE jobs SET status = 'queued', stage = '', progress = 0, error = ?, "
                   "attempts = MAX(attempts - 1, 0) WHERE id = ? AND status = 'running'", (note, job_id))

    def recover(self) -> int:
        """At start-up: jobs left running by a killed server go back to the queue (or fail after
        MAX_ATTEMPTS starts). Returns how many were re-queued."""
        with self._lock:
            self._db.execute("UPDATE jobs SET status = 'failed', finished = ?, error = ? "
                             "WHERE status = 'running' AND attempts >= ?",
                             (time.time(), f"interrupted {MAX_ATTEMPTS} times; not retried", MAX_ATTEMPTS))
            cur = self._db.execute("UPDATE jobs SET status = 'queued', stage = '', progress = 0, "
                                   "error = 'interrupted by a server restart; retrying' WHERE status = 'running'")
            return cur.rowcount


def _row(r: sqlite3.Row) -> JobRow:
    return JobRow(id=r["id"], status=r["status"], stage=r["stage"], progress=r["progress"], error=r["error"],
                  options=json.loads(r["options"]), inputs=json.loads(r["inputs"]), attempts=r["attempts"],
                  created=r["created"], started=r["started"], finished=r["finished"])
