"""What one browser session keeps: its working folder, its inputs and the list of its renders."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from ..workspace import Workspace, remove_stale


@dataclass
class RenderRecord:
    """One finished render of this session."""

    label: str  # "Preview" or "Render #n"
    path: Path  # the video, inside the session folder
    settings: dict[str, Any]  # what was asked for (shown beside the video)
    seconds: float  # wall time it took
    waited: int  # renders it waited behind in the queue


@dataclass
class Session:
    """Everything a session owns. Its folder goes when the session's state is collected (finaliser)."""

    workspace: Workspace
    uploads: dict[str, tuple[str, Path]] = field(default_factory=dict)  # role -> (upload id, saved path)
    renders: list[RenderRecord] = field(default_factory=list)
    job: Any = None  # the RenderJob running for this session, if any
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def folder(self) -> Path:
        return self.workspace.path


@st.cache_resource(show_spinner=False)
def _stale_cleanup_done() -> bool:
    """Once per server process: remove session folders a previous server left behind."""
    remove_stale()
    return True


def session() -> Session:
    """This browser session's `Session` (created on its first run)."""
    _stale_cleanup_done()
    if "studio_session" not in st.session_state:
        st.session_state["studio_session"] = Session(Workspace())
    sess: Session = st.session_state["studio_session"]
    sess.workspace.touch()
    return sess


def saved_upload(sess: Session, role: str, upload) -> Path | None:
    """The saved path of `upload` if this exact upload was already checked and saved, else None."""
    entry = sess.uploads.get(role)
    if upload is not None and entry is not None and entry[0] == upload.file_id and entry[1].exists():
        return entry[1]
    return None
