"""Studio UI tests: AppTest runs `streamlit_app.py` in-process; each test gets its own session folder root."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(autouse=True)
def session_root(tmp_path, monkeypatch):
    """Session folders go under this test's tmp_path (and are checked there)."""
    root = tmp_path / "sessions"
    monkeypatch.setenv("PORTRAIT_STUDIO_WORKDIR", str(root))
    return root


@pytest.fixture
def app():
    """A fresh browser session of the studio (first run done)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(autouse=True)
def release_the_studio():
    """Close the shared Studio after each test (its face landmarker must close before interpreter exit)."""
    yield
    from portrait_studio.ui.queue import render_queue

    render_queue().close()


@pytest.fixture(autouse=True)
def no_webrtc_in_apptest(monkeypatch):
    """The Live tab's WebRTC component needs a real server session (AppTest mocks the Runtime); here it
    stands idle (not playing). The Live tab itself is tested in a real browser (tests/browser)."""
    import types

    import streamlit_webrtc

    idle = types.SimpleNamespace(state=types.SimpleNamespace(playing=False))
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", lambda *args, **kwargs: idle)
