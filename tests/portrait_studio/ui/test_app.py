"""The studio's flows through Streamlit's AppTest (in-process sessions, real renders with the warp engine)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from landmark_drivers.expressions import parse_expression
from portrait_studio.ui.queue import render_queue
from tests.conftest import ROOT

from ..media_utils import probe_video

pytestmark = pytest.mark.slow


def _videos(at):
    return [v.proto.url for v in at.get("video")]


def _subheaders(at):
    return [s.value for s in at.subheader]


def _one_line_errors(at):
    return [e.value for e in at.error]


def test_example_preview_then_render_shows_the_video(app, session_root):
    at = app
    assert [h.value for h in at.header] == ["1 · Portrait", "2 · Voice or driver", "3 · Direction",
                                            "4 · Preview and render"]
    assert at.get("image"), "the photo with its face box is shown"
    assert not _videos(at)
    at.button(key="preview").click().run()
    assert not at.exception and not _one_line_errors(at)
    assert len(_videos(at)) == 1 and "Preview" in _subheaders(at)
    (folder,) = session_root.glob("session-*")
    (preview,) = folder.glob("preview_*.mp4")
    probe = probe_video(preview)
    assert probe.frames == 75 and min(probe.width, probe.height) == 384  # first 3 s, at most 384 px
    at.select_slider(key="size").set_value(256)
    at.button(key="render").click().run()
    assert not at.exception and not _one_line_errors(at)
    heads = _subheaders(at)
    assert heads.index("Render #1") < heads.index("Earlier in this session") and len(_videos(at)) == 2
    assert [d.label for d in at.get("download_button")][0] == "Download the video"
    (full,) = folder.glob("render_1_*.mp4")
    probe = probe_video(full)
    assert probe.frames == 178 and min(probe.width, probe.height) == 256 and probe.audio_codec == "aac"


def test_keyframes_edited_in_the_page_are_the_cli_json(app, tmp_path):
    at = app
    at.number_input(key="kf_time").set_value(1.0)
    at.button(key="preset_smile").click().run()
    at.number_input(key="kf_time").set_value(2.0)
    at.slider(key="kf_amount").set_value(0.5)
    at.button(key="preset_nod").click().run()
    assert not at.exception and not _one_line_errors(at)
    document = json.loads(at.code[0].value)
    assert document["keyframes"] == [{"t": 1.0, "preset": "smile", "amount": 1.0},
                                     {"t": 2.0, "preset": "nod", "amount": 0.5}]
    track = parse_expression(document)  # what `--expression` reads
    assert [k.t for k in track.keyframes] == [1.0, 2.0]
    assert len(at.get("vega_lite_chart")) >= 2, "the curves are plotted"
    # a file loads back into the table, and the same JSON comes out
    example = (ROOT / "examples" / "expressions" / "smile_nod.json").read_bytes()
    at.file_uploader(key="kf_upload").set_value(("smile_nod.json", example, "application/json"))
    at.run()
    loaded = json.loads(at.code[0].value)
    assert [k["t"] for k in loaded["keyframes"]] == [k["t"] for k in json.loads(example)["keyframes"]]
    # keyframes alone drive the face
    at.radio(key="driver_kind").set_value("Keyframes only").run()
    at.button(key="preview").click().run()
    assert not at.exception and not _one_line_errors(at) and len(_videos(at)) == 1


@pytest.mark.parametrize("role, data, message", [
    ("photo", b"this is not an image", "the photo is not an image (JPEG, PNG or WebP)"),
    ("speech", b"RIFF\x00\x00\x00\x00WAVEnot really", "the voice recording is not a readable audio file"),
    ("keyframes", b"{not json", "the keyframe file is not valid JSON"),
])
def test_a_bad_upload_is_one_line_in_the_page(app, role, data, message):
    at = app
    if role == "photo":
        at.radio(key="photo_source").set_value("Upload a photo").run()
        at.file_uploader(key="photo_upload").set_value(("me.png", data, "image/png"))
    elif role == "speech":
        at.radio(key="speech_source").set_value("Upload a recording").run()
        at.file_uploader(key="speech_upload").set_value(("me.wav", data, "audio/wav"))
    else:
        at.file_uploader(key="kf_upload").set_value(("keys.json", data, "application/json"))
    at.run()
    assert not at.exception
    errors = _one_line_errors(at)
    assert len(errors) == 1 and errors[0].startswith(message) and "\n" not in errors[0]
    assert "Traceback" not in str([m.value for m in at.markdown])


def test_two_sessions_rendering_at_once_queue(app):
    """While another session renders, this one waits its turn (and says so), then renders."""
    queue = render_queue()
    other = queue.ticket("another session")
    release = threading.Event()
    holding = threading.Event()

    def hold_the_device():
        with queue.turn(other):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold_the_device)
    holder.start()
    assert holding.wait(30)
    at = app
    at.button(key="preview").click()
    runner = threading.Thread(target=at.run)
    runner.start()
    deadline = time.monotonic() + 60
    while not queue.waiting() and time.monotonic() < deadline:
        time.sleep(0.1)
    waiting = queue.waiting()
    time.sleep(1.0)
    assert queue.busy and len(waiting) == 1  # this session waits behind the other
    release.set()
    holder.join(30)
    runner.join(120)
    assert not at.exception and len(_videos(at)) == 1
    assert any("after waiting for 1 render(s) ahead" in c.value for c in at.caption)
