"""The job API's engine room: the job store plus one dispatcher thread driving the batch executor.

Uploads and videos live under the data folder (`jobs/<id>/`); renders are written to `work/` and
renamed into `jobs/<id>/video.mp4` only when complete (`batch.task.run_task`, the same code a batch
runs). The dispatcher thread owns the executor (local worker processes or Ray actors): it starts
queued jobs while workers are free, records progress and outcomes, and forwards cancel requests.
On a clean stop the running jobs go back to the queue; after a kill, `JobStore.recover` does it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any

from ..batch.options_table import brief, canonical_key, is_path
from ..batch.task import Outcome, ProgressEvent, Task
from ..errors import InputError
from ..options import RenderOptions, options_from_values
from .store import JobRow, JobStore

logger = logging.getLogger(__name__)

STAGE_WEIGHTS = {"face": (0.0, 0.05), "driver": (0.05, 0.25), "render": (0.25, 0.95), "denoise": (0.25, 0.95),
                 "mux": (0.95, 1.0)}  # share of a job's progress bar per stage
UPLOAD_OPTIONS = ("driving_video", "expression")  # path options that come as uploads, not as values


def parse_api_options(raw: Any) -> dict[str, Any]:
    """Validate the `options` JSON object of a job: long names, no file paths; returns converted values."""
    if not isinstance(raw, dict):
        raise InputError("options must be a JSON object of render options by their long names")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = canonical_key(key)
        if name is None:
            raise InputError(f"unknown option {brief(key)}")
        if is_path(name):
            hint = " (upload it as a file field)" if name in UPLOAD_OPTIONS else ""
            raise InputError(f"option {name} names a file on the server and is not accepted here{hint}")
        if value is not None:
            values[name] = value
    options_from_values(values).validate()
    return values


class JobService:
    """Queue, run and track render jobs under `data_dir` (one server per data folder)."""

    def __init__(self, data_dir: str | Path, workers: int = 1, executor: str = "local",
                 address: str | None = None) -> None:
        self.data = Path(data_dir).expanduser().resolve()
        self.data.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.data / "server.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise InputError(f"another server is using {self.data}") from None
        self.jobs_dir = self.data / "jobs"
        self.jobs_dir.mkdir(exist_ok=True)
        self.work = self.data / "work"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir()
        self.store = JobStore(self.data / "jobs.sqlite3")
        requeued = self.store.recover()
        if requeued:
            logger.warning("re-queued %d job(s) interrupted by the last stop", requeued)
        self.workers, self._kind, self._address = workers, executor, address
        self._cancels: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str = ""  # set when the executor cannot start

    def new_job_folder(self) -> tuple[str, Path]:
        job_id = secrets.token_hex(8)
        folder = self.jobs_dir / job_id
        folder.mkdir()
        return job_id, folder

    def discard_job_folder(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def submit(self, job_id: str, options: dict[str, Any], inputs: dict[str, str]) -> None:
        """Queue a job whose uploads are already checked and stored in its folder."""
        self.store.add(job_id, options, inputs)
        self._wake.set()

    def cancel(self, job_id: str) -> JobRow | None:
        """Cancel a queued job now, or ask the worker running it to stop (the status follows)."""
        row = self.store.get(job_id)
        if row is None:
            return None
        if row.status == "queued" and self.store.cancel_queued(job_id):
            return self.store.get(job_id)
        if row.status == "running":
            self._cancels.put(job_id)
            self._wake.set()
        return self.store.get(job_id)

    def video_path(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / "video.mp4"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="job-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(60)
        self.store.close()
        os.close(self._lock_fd)

    def _executor(self):
        if self._kind == "ray":
            from ..batch.ray_executor import RayExecutor

            return RayExecutor(workers=self.workers, address=self._address)
        from ..batch.local import LocalExecutor

        return LocalExecutor(workers=self.workers)

    def _run(self) -> None:
        """Dispatcher thread: owns the executor for the whole life of the server."""
        try:
            executor = self._executor()
        except Exception as exc:  # noqa: BLE001 - reported by /health
            self.error = f"the {self._kind} executor did not start: {exc}"
            logger.error("%s", self.error)
            return
        running: set[str] = set()
        try:
            self._loop(executor, running)
        except Exception as exc:  # reported by /health; the server keeps answering
            self.error = f"the job dispatcher stopped: {type(exc).__name__}: {str(exc)[:200]}"
            logger.exception("job dispatcher failed")
        finally:
            for job_id in running:
                self.store.requeue(job_id, "the server stopped during the render; it will run again")
            executor.close()

    def _loop(self, executor, running: set[str]) -> None:
        """Start queued jobs while workers are free; record progress and outcomes; forward cancels."""
        while not self._stop.is_set():
            while len(running) < executor.capacity:
                row = self.store.claim_next()
                if row is None:
                    break
                task = self._task(row)
                if task is None:
                    continue
                running.add(row.id)
                executor.submit(task)
            while not self._cancels.empty():
                executor.cancel(self._cancels.get())
            timeout = 0.2 if running else 0.5
            events = executor.poll(timeout) if running else []
            if not running:
                self._wake.wait(timeout)
                self._wake.clear()
            for event in events:
                self._record(event, running)

    def _record(self, event: Outcome | ProgressEvent, running: set[str]) -> None:
        if isinstance(event, ProgressEvent):
            lo, hi = STAGE_WEIGHTS.get(event.stage, (0.0, 1.0))
            fraction = lo + (hi - lo) * (event.done / event.total if event.total else 0.0)
            self.store.set_progress(event.id, event.stage, round(fraction, 4))
            return
        running.discard(event.id)
        if self._stop.is_set() and event.status == "cancelled":
            return  # stopped by the server, not by a client: stays running -> re-queued
        self.store.finish(event.id, event.status, event.error)

    def _task(self, row: JobRow) -> Task | None:
        folder = self.jobs_dir / row.id
        try:
            values = {k: v for k, v in row.options.items()}
            for name in UPLOAD_OPTIONS:
                if name in row.inputs:
                    values[name] = folder / row.inputs[name]
            options: RenderOptions = options_from_values(values).validate()
        except (InputError, TypeError, ValueError) as exc:
            self.store.finish(row.id, "failed", f"invalid stored job: {str(exc)[:200]}")
            return None
        audio = folder / row.inputs["audio"] if "audio" in row.inputs else None
        return Task(id=row.id, image=folder / row.inputs["image"], audio=audio, output=self.video_path(row.id),
                    work=self.work / f"{row.id}.mp4", options=options)
