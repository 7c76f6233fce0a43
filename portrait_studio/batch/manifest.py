"""The batch manifest: which outputs were rendered from which inputs and options.

A job's key is a SHA-256 over the bytes of every input file it reads (portrait, audio, driving video,
keyframes, track, trajectories, masks) and its options (paths of inputs replaced by their content
hashes, side outputs by their names) and its output name. One small JSON record per output lives in
`<out>/.portrait-batch/manifest/`, written atomically *before* the rendered file is renamed into place,
and it stores the output's size and modification time: a rerun skips a job only when the record's key
matches and the file on disk is the very file that record describes. A run killed between the two
steps therefore re-renders that one job; it never skips a job whose output is missing or stale.
Records are per file, so concurrent writers (local workers, Ray actors on a shared filesystem) never
contend.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jobs import STATE_DIR, Job, written_files
from .options_table import is_path, options_to_dict

HASH_VERSION = 1  # bump when what goes into a job's key changes
_CHUNK = 1 << 20


class FileHasher:
    """SHA-256 of files, cached by (path, size, mtime) for the many jobs that share one portrait."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        digest = self._cache.get(key)
        if digest is None:
            h = hashlib.sha256()
            if path.is_dir():
                h.update(b"directory:" + str(path.resolve()).encode())
            else:
                with open(path, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
            digest = self._cache[key] = h.hexdigest()
        return digest


def job_key(job: Job, hasher: FileHasher) -> str:
    """The content hash of a job's inputs, options and output name."""
    options: dict[str, Any] = {}
    for name, value in options_to_dict(job.options).items():
        if is_path(name) and value is not None and name not in ("save_landmarks", "debug_dir"):
            path = Path(value)
            value = {"sha256": hasher(path)} if path.exists() else {"missing": str(path)}
        options[name] = value
    doc = {
        "v": HASH_VERSION,
        "image": hasher(job.image),
        "audio": hasher(job.audio) if job.audio is not None else None,
        "options": options,
        "output": job.name,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Record:
    """What the manifest says about one finished output."""

    output: str  # the output name as written in the job file
    key: str  # job_key at render time
    size: int  # bytes of the rendered file
    mtime_ns: int  # its modification time (kept by the rename into place)
    engine: str  # engine that rendered it
    frames: int  # frames in the video
    duration: float  # seconds of video
    seconds: float  # wall time of the render
    finished: str  # ISO time the render finished (UTC)


def manifest_dir(out_root: Path) -> Path:
    return Path(out_root) / STATE_DIR / "manifest"


def record_path(out_root: Path, output: Path) -> Path:
    """Where the record of `output` (an absolute path) lives."""
    name = hashlib.sha256(str(Path(output)).encode()).hexdigest()[:40]
    return manifest_dir(out_root) / f"{name}.json"


def read_record(out_root: Path, output: Path) -> Record | None:
    """The record for `output`, or None when there is none or it is unreadable."""
    try:
        data = json.loads(record_path(out_root, output).read_text(encoding="utf-8"))
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_record(out_root: Path, output: Path, record: Record) -> None:
    """Write a record atomically (temporary file + rename; fsynced)."""
    path = record_path(out_root, output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rec.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record.__dict__, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def up_to_date(out_root: Path, job: Job, key: str) -> Record | None:
    """The record when `job.output` is the file rendered for exactly this key; else None."""
    record = read_record(out_root, job.output)
    if record is None or record.key != key:
        return None
    if not all(Path(p).exists() for p in written_files(job)[1:]):
        return None  # a side output (landmark track, debug videos) was removed: render again
    try:
        st = job.output.stat()
    except OSError:
        return None
    return record if (st.st_size, st.st_mtime_ns) == (record.size, record.mtime_ns) else None
