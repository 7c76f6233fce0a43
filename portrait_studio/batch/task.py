"""One render as executors run it: a picklable `Task` in, an `Outcome` out.

`run_task` is the only place a batch, the job API, a local worker or a Ray actor renders: it renders
into the task's work path (a private folder), then — for batch tasks — writes the manifest record,
then renames the file onto its final path. The final path therefore only ever holds a complete
video; a crash at any point leaves at most a file in the work folder, which the next run clears.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from ..errors import InputError, RenderCancelled
from ..options import RenderOptions
from ..progress import ProgressFn
from .manifest import Record, write_record

logger = logging.getLogger(__name__)

Status = Literal["done", "failed", "cancelled"]
MAX_ERROR = 300  # characters of an error message kept in summaries and the job store


@dataclass(frozen=True)
class Task:
    """A render to run somewhere (a local worker process or a Ray actor)."""

    id: str  # unique within the executor
    image: Path  # portrait photo
    audio: Path | None  # speech file
    output: Path  # final path; only a complete video is ever renamed onto it
    work: Path  # where the render is written first (a private folder on the same filesystem)
    options: RenderOptions  # validated render options
    manifest_root: Path | None = None  # batch output folder whose manifest records this output
    output_name: str = ""  # the output as written in the job file (manifest record)
    key: str = ""  # the job's content hash (manifest record)


@dataclass(frozen=True)
class Outcome:
    """How a task ended."""

    id: str  # Task.id
    status: Status  # done, failed or cancelled
    seconds: float  # wall time spent on it
    error: str = ""  # one line for failed tasks
    engine: str = ""  # engine that rendered it
    frames: int = 0  # frames written
    duration: float = 0.0  # seconds of video
    finished: str = field(default_factory=lambda: _now())  # ISO time (UTC)


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of a running task (a stage of its render)."""

    id: str  # Task.id
    stage: str  # "face", "driver", "render", ...
    done: int  # units finished
    total: int  # units in the stage


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def short_error(text: str) -> str:
    """One line of at most MAX_ERROR characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 3] + "..."


def run_task(studio, task: Task, progress: ProgressFn, cancel) -> Outcome:
    """Render `task` with a long-lived `Studio`; never raises for a failing render."""
    start = time.monotonic()
    def elapsed() -> float:
        return round(time.monotonic() - start, 3)

    try:
        task.work.parent.mkdir(parents=True, exist_ok=True)
        result = studio.render(task.image, task.audio, task.work, options=task.options, progress=progress,
                               cancel=cancel)
        st = task.work.stat()
        task.output.parent.mkdir(parents=True, exist_ok=True)
        outcome = Outcome(task.id, "done", elapsed(), engine=result.engine, frames=result.num_frames,
                          duration=round(result.duration, 3))
        if task.manifest_root is not None:
            write_record(task.manifest_root, task.output, Record(
                output=task.output_name, key=task.key, size=st.st_size, mtime_ns=st.st_mtime_ns,
                engine=outcome.engine, frames=outcome.frames, duration=outcome.duration,
                seconds=outcome.seconds, finished=outcome.finished))
        move_into_place(task.work, task.output)
        return outcome
    except RenderCancelled:
        return Outcome(task.id, "cancelled", elapsed(), error="cancelled")
    except InputError as exc:
        return Outcome(task.id, "failed", elapsed(), error=short_error(str(exc)))
    except Exception as exc:  # one job's bug must not end the batch
        logger.exception("job %s failed", task.id)
        return Outcome(task.id, "failed", elapsed(), error=short_error(f"internal error: {type(exc).__name__}: {exc}"))
    finally:
        if task.work.exists():
            task.work.unlink()


def move_into_place(src: Path, dst: Path) -> None:
    """Rename `src` onto `dst`; across filesystems copy beside `dst` first, then rename (atomic either way)."""
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another filesystem
            raise
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.part{dst.suffix}")
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
        src.unlink(missing_ok=True)
