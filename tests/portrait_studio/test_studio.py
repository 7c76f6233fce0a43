"""The long-lived Studio (issue #7): models load once, options per call, one render at a time,
cancellation that leaves nothing behind, and the public API."""

import subprocess
import threading
import time

import pytest

from portrait_studio import InputError, MofaOptions, RenderCancelled, RenderOptions, RenderResult, Studio
from portrait_studio.media import ffmpeg_exe

from .media_utils import probe_video


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("audio") / "speech_1s.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", "0.5", "-i", str(speech_path), "-t", "1.0", str(path)],
                   check=True)
    return path


@pytest.fixture(scope="module")
def studio():
    with Studio(RenderOptions(engine="warp", size=256)) as s:
        yield s


def test_models_load_once_and_options_change_per_call(studio, tmp_path, portrait_path, short_speech):
    first = studio.render(portrait_path, short_speech, tmp_path / "a.mp4")
    assert isinstance(first, RenderResult) and (first.width, first.fps) == (256, 25)
    second = studio.render(portrait_path, short_speech, tmp_path / "b.mp4",
                           options=RenderOptions(engine="warp", size=320, fps=12))
    assert (second.width, second.fps) == (320, 12)
    assert probe_video(tmp_path / "b.mp4").width == 320
    track = studio.landmarks(portrait_path, short_speech)
    assert track.num_frames == first.num_frames
    assert studio.models.loads == {"face": 1}  # one face landmarker for three calls
    assert studio.options.size == 256  # a per-call option does not change the Studio's own


def test_bad_per_call_options_are_refused_before_anything_runs(studio, tmp_path, portrait_path, short_speech):
    with pytest.raises(InputError, match="--size"):
        studio.render(portrait_path, short_speech, tmp_path / "x.mp4", options=RenderOptions(size=10))
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_within_a_frame_and_leaves_nothing(studio, tmp_path, portrait_path, short_speech):
    cancel = threading.Event()
    frames = []

    def progress(stage, done, total):
        if stage == "render":
            frames.append(done)
            if done == 5:
                cancel.set()

    (tmp_path / "keep.mp4").write_bytes(b"an older render")
    with pytest.raises(RenderCancelled):
        studio.render(portrait_path, short_speech, tmp_path / "keep.mp4", progress=progress, cancel=cancel)
    assert max(frames) == 5  # no frame made after the one that saw the event
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]  # no temporaries
    assert (tmp_path / "keep.mp4").read_bytes() == b"an older render"  # the old output is kept


def test_the_audio_is_encoded_while_the_driver_runs_and_a_cancel_there_stops_it(studio, tmp_path, portrait_path,
                                                                                 short_speech, monkeypatch):
    from portrait_studio import media

    started = []

    class Recorded(media.AudioEncoder):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(media, "AudioEncoder", Recorded)
    studio.render(portrait_path, short_speech, tmp_path / "out.mp4", options=RenderOptions(engine="warp", size=256,
                  duration=0.6))
    assert len(started) == 1 and started[0].duration == 0.6  # cut like the video (--duration)
    probe = probe_video(tmp_path / "out.mp4")
    assert probe.audio_codec == "aac" and probe.frames == 15 and probe.duration == pytest.approx(0.6, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]

    cancel = threading.Event()
    with pytest.raises(RenderCancelled):  # cancelled while the driver runs, the encode already started
        studio.render(portrait_path, short_speech, tmp_path / "x.mp4", cancel=cancel,
                      progress=lambda stage, done, total: cancel.set() if stage == "driver" else None)
    assert len(started) == 2 and started[1]._proc.returncode is not None  # stopped, not left running
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_cancel_set_before_the_render_writes_nothing(studio, tmp_path, portrait_path, short_speech):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RenderCancelled):
        studio.render(portrait_path, short_speech, tmp_path / "out.mp4", cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_one_render_at_a_time(studio, tmp_path, portrait_path, short_speech):
    spans: dict[str, list[float]] = {}

    def run(name):
        def progress(stage, done, total):
            spans.setdefault(name, []).append(time.monotonic())

        studio.render(portrait_path, short_speech, tmp_path / f"{name}.mp4", progress=progress)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    (a0, a1), (b0, b1) = [(min(v), max(v)) for v in spans.values()]
    assert a1 <= b0 or b1 <= a0  # the two renders' progress never interleaves


def test_closing_releases_models_and_the_studio_reloads_on_use(portrait_path):
    s = Studio(RenderOptions(size=256))
    s.prepare(portrait_path)
    assert "face" in s.models
    s.close()
    assert "face" not in s.models
    s.prepare(portrait_path)
    assert s.models.loads["face"] == 2
    s.close()


def test_mofa_options_are_public():
    assert RenderOptions(mofa=MofaOptions(steps=3)).validate().mofa.steps == 3
