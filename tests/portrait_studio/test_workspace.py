"""Session folders: removed on close, when the session's state is collected, and when left by a dead server."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from portrait_studio.workspace import Workspace, remove_stale


def test_close_and_garbage_collection_remove_the_folder(tmp_path):
    ws = Workspace(tmp_path)
    ws.file("../../escape.txt").write_text("x")  # names stay inside the folder
    assert (ws.path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()
    ws.close()
    assert not ws.path.exists() and ws.closed
    ws.close()  # idempotent
    other = Workspace(tmp_path)
    path = other.path
    (path / "upload.png").write_bytes(b"x")
    del other
    gc.collect()
    assert not path.exists()


def test_stale_folders_of_dead_servers_are_removed(tmp_path):
    mine = Workspace(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / "session-orphan"
    orphan.mkdir()
    (orphan / "owner").write_text(dead.stdout.strip())
    old = tmp_path / "session-old"
    old.mkdir()
    (old / "owner").write_text(str(os.getpid()))
    os.utime(old / "owner", (0, 0))
    removed = remove_stale(tmp_path)
    assert sorted(removed) == sorted([orphan, old])
    assert mine.path.exists()
    mine.close()
