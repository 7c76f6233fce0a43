"""Run a validated batch: skip what is up to date, render the rest on an executor, write the summary.

One batch at a time per output folder (an exclusive lock in `<out>/.portrait-batch/`); the work
folder in there is emptied before and after the run, so files left by a killed run never survive the
next one. `summary.json` and `summary.csv` in the output folder list every job: its row, output,
status (done, skipped, failed, cancelled), timings, engine, frames and error.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ..errors import InputError, RenderCancelled
from ..progress import ProgressFn, no_progress
from .jobs import STATE_DIR, Job
from .manifest import FileHasher, job_key, up_to_date
from .task import Outcome, ProgressEvent, Task

logger = logging.getLogger(__name__)

JobStatus = Literal["pending", "skipped", "done", "failed", "cancelled"]
SUMMARY_FIELDS = ("row", "output", "status", "seconds", "engine", "frames", "duration", "error", "finished")


class Executor(Protocol):
    """What runs tasks: `LocalExecutor` (worker processes) or `RayExecutor` (Ray actors)."""

    capacity: int  # tasks it runs at once

    def submit(self, task: Task) -> None: ...

    def cancel(self, task_id: str) -> None: ...

    def cancel_all(self) -> None: ...

    def poll(self, timeout: float) -> list[Outcome | ProgressEvent]: ...

    def close(self) -> None: ...


@dataclass
class JobReport:
    """One job's line in the summary."""

    row: int  # 1-based row in the job file
    output: str  # the output as written in the job file
    status: JobStatus  # pending until it ends
    seconds: float = 0.0  # render wall time (for skipped jobs: of the render that made the output)
    engine: str = ""  # engine that rendered it
    frames: int = 0  # frames in the video
    duration: float = 0.0  # seconds of video
    error: str = ""  # why it failed
    finished: str = ""  # ISO time it finished (UTC)


@dataclass
class BatchSummary:
    """The result of a batch run."""

    jobs: list[JobReport] = field(default_factory=list)  # in job-file order
    seconds: float = 0.0  # wall time of the run

    def count(self, status: JobStatus) -> int:
        return sum(j.status == status for j in self.jobs)

    @property
    def ok(self) -> bool:
        """True when every job is done or skipped."""
        return all(j.status in ("done", "skipped") for j in self.jobs)


@dataclass(frozen=True)
class Plan:
    """Which jobs run and which are skipped (up to date)."""

    run: list[tuple[Job, str]]  # (job, key)
    skip: list[tuple[Job, object]]  # (job, manifest record)


def plan_batch(jobs: list[Job], out_root: Path) -> Plan:
    """Hash every job and look it up in the manifest."""
    hasher = FileHasher()
    run, skip = [], []
    for job in jobs:
        key = job_key(job, hasher)
        record = up_to_date(out_root, job, key)
        if record is not None:
            skip.append((job, record))
        else:
            run.append((job, key))
    return Plan(run, skip)


@contextlib.contextmanager
def batch_lock(out_root: Path) -> Iterator[Path]:
    """Hold the output folder's batch lock; yield the (emptied) work folder."""
    state = out_root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another batch is running on {out_root} (wait for it or use another --out)") from None
        work = state / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        os.close(fd)


def run_batch(jobs: list[Job], out_dir: str | Path, executor: Executor,
              progress: ProgressFn = no_progress, cancel: threading.Event | None = None) -> BatchSummary:
    """Run `jobs` (validated by `load_jobs` against the same `out_dir`) and write the summary files.

    progress("jobs", finished, total) counts the jobs that had to run; skipped jobs are not in it.
    When `cancel` is set, queued jobs are dropped and running renders stop (both end "cancelled"),
    the summary is written and RenderCancelled is raised. On KeyboardInterrupt the running renders
    are cancelled, the summary is written, and it re-raises.
    """
    out_root = Path(out_dir).expanduser().resolve()
    start = time.monotonic()
    out_root.mkdir(parents=True, exist_ok=True)
    with batch_lock(out_root) as work:
        plan = plan_batch(jobs, out_root)
        reports = {job.row: JobReport(job.row, job.name, "pending") for job in jobs}
        for job, rec in plan.skip:
            reports[job.row] = JobReport(job.row, job.name, "skipped", seconds=rec.seconds, engine=rec.engine,
                                         frames=rec.frames, duration=rec.duration, finished=rec.finished)
        summary = BatchSummary([reports[j.row] for j in jobs])
        try:
            _execute(plan, out_root, work, executor, reports, progress, cancel)
        except KeyboardInterrupt:
            executor.cancel_all()
            raise
        finally:
            summary.jobs = [reports[j.row] for j in jobs]
            summary.seconds = round(time.monotonic() - start, 3)
            write_summary(out_root, summary)
    return summary


def _execute(plan: Plan, out_root: Path, work: Path, executor: Executor, reports: dict[int, JobReport],
             progress: ProgressFn, cancel: threading.Event | None) -> None:
    by_id: dict[str, Job] = {}
    for job, key in plan.run:
        task_id = f"row{job.row}"
        by_id[task_id] = job
        executor.submit(Task(id=task_id, image=job.image, audio=job.audio, output=job.output,
                             work=work / f"{task_id}{job.output.suffix}", options=job.options,
                             manifest_root=out_root, output_name=job.name, key=key))
    total, finished = len(plan.run), 0
    progress("jobs", 0, total)
    cancelled = False
    while finished < total:
        if cancel is not None and cancel.is_set() and not cancelled:
            cancelled = True
            executor.cancel_all()
        for event in executor.poll(timeout=0.5):
            if isinstance(event, ProgressEvent) or event.id not in by_id:
                continue
            job = by_id.pop(event.id)
            reports[job.row] = JobReport(job.row, job.name, event.status, seconds=event.seconds, engine=event.engine,
                                         frames=event.frames, duration=event.duration, error=event.error,
                                         finished=event.finished)
            if event.status == "failed":
                logger.warning("row %d (%s) failed: %s", job.row, job.name, event.error)
            finished += 1
            progress("jobs", finished, total)
    if cancelled:
        raise RenderCancelled("the batch was cancelled")


def write_summary(out_root: Path, summary: BatchSummary) -> None:
    """summary.json and summary.csv in the output folder (each written atomically)."""
    rows = [{k: getattr(j, k) for k in SUMMARY_FIELDS} for j in summary.jobs]
    counts = {s: summary.count(s) for s in ("done", "skipped", "failed", "cancelled", "pending")}
    doc = {"seconds": summary.seconds, "counts": counts, "jobs": rows}
    _atomic_text(out_root / "summary.json", json.dumps(doc, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    _atomic_text(out_root / "summary.csv", buf.getvalue())


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
