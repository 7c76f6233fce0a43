"""Output files: validated before any work, never one of the inputs, written atomically.

Every path the app writes (the video, `--save-landmarks`, the `landmarks -o` track, the debug videos,
batch and API outputs) goes through `check_output_path` before any work and through `atomic_output`
when written:

- an output that is the same file as any input (same resolved path, or `os.path.samefile` where both
  exist, which catches hard links and symlinks) is refused, so a render can never replace its own
  photo, audio, driving video or option files;
- the file is written under a temporary name beside the output and renamed onto it only when the
  whole render succeeds; on any failure (also Ctrl-C, SIGTERM, SIGHUP) the temporary file is removed
  and an existing output is left as it was;
- the new file gets the mode any new file gets (0644 under umask 022); replacing an existing file
  keeps that file's mode;
- after a SIGKILL, where no code runs, the next write to the same output removes the temporary files
  it can prove are its own: the name pattern `.{output name}.ps{pid}-{random}.{kind}{suffix}`, older
  than `LIMITS.stale_temp_age`, and the process `pid` no longer running. Nothing else is touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputError
from .limits import LIMITS

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv")
_KIND = re.compile(r"^[a-z]+$")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether `a` and `b` name the same file: equal resolved paths, or `os.path.samefile` when both exist."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # symlink loops
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(out: str | Path, inputs: Iterable[str | Path | None] = (),
                      extensions: tuple[str, ...] = VIDEO_EXTENSIONS, what: str = "output") -> Path:
    """Validate an output path before any work; return it as a Path.

    Refuses (InputError): an extension not in `extensions`, a missing or unwritable directory, a
    directory at `out`, and an `out` that is the same file as any of `inputs` (None entries are skipped).
    `what` names the output in messages ("output", "--save-landmarks", ...).
    """
    out = Path(out)
    if out.suffix.lower() not in extensions:
        suffix = repr(_bounded(out.suffix)) if out.suffix else "(none)"
        raise InputError(f"unsupported {what} extension {suffix} for {out}; "
                         f"use one of {', '.join(extensions)}")
    for source in inputs:
        if source is not None and same_file(out, source):
            raise InputError(f"{what} {out} is the same file as the input {source}; "
                             "choose another output path (inputs are never overwritten)")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"{what} directory {parent} is a file, not a directory")
    if not parent.is_dir():
        raise InputError(f"{what} directory does not exist: {parent}")
    if out.is_dir():
        raise InputError(f"{what} path is a directory: {out}")
    if out.exists() and not out.is_file():
        raise InputError(f"{what} path exists and is not a regular file: {out}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".write-test-"):
            pass
    except OSError:
        raise InputError(f"{what} directory is not writable: {parent}") from None
    return out


def _bounded(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _temp_prefix(out: Path) -> str:
    return f".{out.name}.ps{os.getpid()}-"


def _stale_pattern(out: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(out.name)}\.ps(\d+)-[a-z0-9_]{{8}}\.[a-z]+(\.[A-Za-z0-9]+)?$")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists (another user's) or not a pid we can reason about: keep the file
    return True


def remove_stale_temporaries(out: str | Path, max_age: float | None = None) -> list[Path]:
    """Remove temporary files of earlier, killed writes to `out` (see the module docstring); return them."""
    out = Path(out)
    age = LIMITS.stale_temp_age.value if max_age is None else max_age
    pattern, removed, now = _stale_pattern(out), [], time.time()
    parent = out.parent if str(out.parent) else Path(".")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < age or _running(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
            logger.info("removed a stale temporary file of a killed render: %s", entry.path)
    return removed


def _new_file_mode() -> int:
    """The mode a new regular file gets under the current umask (0o644 under umask 022)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _make_temp(out: Path, kind: str, suffix: str | None = None) -> Path:
    if not _KIND.match(kind):
        raise ValueError(f"kind must be lowercase letters, got {kind!r}")
    suffix = out.suffix if suffix is None else suffix
    parent = out.parent if str(out.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(out), suffix=f".{kind}{suffix}", dir=parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_output(out: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `out`; rename it onto `out` only if the block succeeds.

    On any failure (including KeyboardInterrupt) the temporary file is removed and `out` is left as
    it was. The renamed file has the mode of the file it replaces, or a new file's mode under the umask.
    Stale temporaries of killed earlier writes to `out` are removed first.
    """
    out = Path(out)
    remove_stale_temporaries(out)
    tmp = _make_temp(out, "part")
    try:
        yield tmp
        try:
            mode = stat.S_IMODE(out.stat().st_mode) if out.is_file() else _new_file_mode()
        except OSError:
            mode = _new_file_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def temporary_path(beside: str | Path, kind: str, suffix: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary file path beside `beside`; the file is always removed after.

    kind: lowercase letters naming the file's role ("video", "audio"); part of the temporary name, so
    `remove_stale_temporaries(beside)` recognises it after a SIGKILL. suffix: the file's extension
    (default: `beside`'s).
    """
    path = _make_temp(Path(beside), kind, suffix)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
