"""Per-session working folders: uploads and renders of one studio session, removed when it ends.

Each folder lives under one root (`$PORTRAIT_STUDIO_WORKDIR`, else `<tmp>/portrait-studio-sessions`)
and holds an `owner` file with the server's process id. A session's folder is removed by `close()`,
by a finaliser when the session's state is collected, and, for folders a crashed or killed server
left behind, by `remove_stale` when the next server starts.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path

logger = logging.getLogger(__name__)

ENV_VAR = "PORTRAIT_STUDIO_WORKDIR"
STALE_AFTER_S = 24 * 3600.0  # a live server's folder untouched this long is removed too


def default_root() -> Path:
    """Where session folders go."""
    return Path(os.environ.get(ENV_VAR) or Path(tempfile.gettempdir()) / "portrait-studio-sessions")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Workspace:
    """One session's folder. Use `path` for its files; `close()` (or garbage collection) removes it."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="session-", dir=self.root))
        (self.path / "owner").write_text(str(os.getpid()))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)

    def file(self, name: str) -> Path:
        """A path for `name` inside the folder (the name's directory parts are dropped)."""
        return self.path / Path(name).name

    def touch(self) -> None:
        """Mark the folder as in use (for `remove_stale`)."""
        os.utime(self.path / "owner")

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Remove the folder and everything in it (idempotent)."""
        self._finalizer()


def remove_stale(root: Path | None = None, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove session folders whose server process is gone, or untouched for `max_age_s`; returns them."""
    root = Path(root) if root is not None else default_root()
    removed = []
    if not root.is_dir():
        return removed
    now = time.time()
    for folder in root.glob("session-*"):
        owner = folder / "owner"
        try:
            pid = int(owner.read_text().strip())
            age = now - owner.stat().st_mtime
        except (OSError, ValueError):
            pid, age = -1, now - folder.stat().st_mtime
        if (pid > 0 and pid != os.getpid() and not _alive(pid)) or age > max_age_s or pid <= 0 and age > 60:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info("removed %d stale session folder(s) under %s", len(removed), root)
    return removed
