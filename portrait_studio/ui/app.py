"""The studio page, top to bottom: portrait, then two tabs: Studio (voice/driver -> direction ->
preview/render) and Live (the portrait following the browser's camera or microphone in real time)."""

from __future__ import annotations

import streamlit as st

from . import direction, driver, live, portrait, render
from .state import session


def main() -> None:
    """Draw the whole page for this session (Streamlit runs it on every interaction)."""
    st.set_page_config(page_title="Portrait Studio", page_icon="🎬", layout="centered")
    st.title("Portrait Studio")
    st.write("Make a photo talk: pick a portrait, give it a voice, direct it, preview, render, download.")
    sess = session()
    chosen = portrait.section(sess)
    studio_tab, live_tab = st.tabs(["Studio", "Live"])
    with studio_tab:
        drive = driver.section(sess)
        steer = direction.section(sess, chosen) if chosen is not None else None
        render.section(sess, chosen, drive, steer)
    with live_tab:  # last: while a live stream plays, it refreshes its latency line until the next rerun
        live.section(chosen.path if chosen is not None else None)
