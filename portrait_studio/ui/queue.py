"""The process-wide render queue: one render at a time per device, across every browser session."""

from __future__ import annotations

import atexit

import streamlit as st

from ..options import RenderOptions
from ..render_queue import RenderQueue


def _make_studio():
    from ..studio import Studio

    return Studio(RenderOptions(engine="warp"))


@st.cache_resource(show_spinner=False)
def render_queue() -> RenderQueue:
    """The queue (and through it the one long-lived Studio) every session of this server shares."""
    queue = RenderQueue(_make_studio)
    atexit.register(queue.close)  # the Studio's models are released before the interpreter goes
    return queue
