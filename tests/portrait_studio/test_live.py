"""Live sessions with file inputs, direction changes, dropping, and the `live` command."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from landmark_drivers.audio.audio_driver import AudioDriverOptions, drive_from_audio
from landmark_drivers.rig import FaceRig
from portrait_studio import media
from portrait_studio.cli import main
from portrait_studio.errors import InputError
from portrait_studio.live import LiveOptions, LiveSession
from portrait_studio.live.sources import VideoFileSource
from portrait_studio.options import RenderOptions
from portrait_studio.studio import Studio
from portrait_studio.controls import MotionControls
from portrait_studio.engines.warp import warp_frames

from .media_utils import probe_video
from .test_render_e2e import mouth_aperture

ROOT = Path(__file__).resolve().parents[2]
DRIVING = ROOT / "tests" / "fixtures" / "driving_carphone.mp4"


@pytest.fixture(scope="module")
def portrait(portrait_path):
    with Studio(RenderOptions(engine="warp", size=256)) as studio:
        return studio.prepare(portrait_path)


def _audio_session(portrait, samples, **options):
    with LiveSession(portrait, LiveOptions(driver="audio", size=256, drop_late=False, **options)) as session:
        for i in range(0, samples.size, 320):
            session.push_audio(samples[i:i + 320], i / 16000)
        session.end()
        frames = list(session.frames(timeout=60))
        return frames, session.stats()


def test_audio_session_speaks_like_the_offline_render(portrait, speech_path):
    samples = media.load_audio(speech_path, 16000)
    frames, stats = _audio_session(portrait, samples)
    assert [f.index for f in frames] == list(range(178))  # round(7.1 s * 25)
    assert stats.frames == 178 and stats.dropped == 0 and stats.latency_p95_ms > 0
    assert frames[0].image.shape == portrait.image.shape and frames[0].image.dtype == np.uint8
    # the quality bar: the mouth aperture measured on the live frames against the offline render's
    offline = FaceRig(portrait.face).track(drive_from_audio(samples, 16000, AudioDriverOptions(fps=25)))
    rendered = list(warp_frames(portrait, offline, MotionControls()))
    live_aperture, offline_aperture = mouth_aperture([f.image for f in frames]), mouth_aperture(rendered)
    assert np.corrcoef(live_aperture, offline_aperture)[0, 1] > 0.8
    mouth = slice(int(portrait.face.landmarks68[:, 1].max() * 0.8), None)
    changes = [np.abs(a.image[mouth].astype(int) - b.image[mouth]).mean() for a, b in zip(frames[:-1], frames[1:], strict=True)]
    assert np.mean(changes) > 0.05 and max(changes) > 0.5  # the portrait moves


def test_directions_apply_to_the_next_frame(portrait):
    samples = np.zeros(16000, np.float32)
    with LiveSession(portrait, LiveOptions(driver="audio", size=256, drop_late=False)) as session:
        session.push_audio(samples[:8000], 0.0)
        first = [next(iter(session.frames(timeout=30))) for _ in range(3)]
        session.direct(head_motion=0.0, sliders={"yaw": 20.0})
        session.push_audio(samples[8000:])
        session.end()
        rest = list(session.frames(timeout=30))
    turned = rest[-1].points
    still = first[-1].points
    assert turned[:, 0].mean() < still[:, 0].mean() - 3  # yaw 20: the face turns toward image-left
    with pytest.raises(InputError):
        session.direct(head_motion=9.0)


def test_late_frames_are_dropped_and_counted(portrait):
    now, gate = [0.0], threading.Event()

    def clock() -> float:  # the worker sees the time only once the test opens the gate
        if threading.current_thread().name == "live-session":
            gate.wait()
        return now[0]

    samples = np.zeros(16000 * 2, np.float32)
    with LiveSession(portrait, LiveOptions(driver="audio", size=256), clock=clock) as session:
        session.push_audio(samples[:16000], 0.0)  # 2 s of audio arrive at t = 0 ...
        session.push_audio(samples[16000:])
        session.end()
        now[0] = 5.0  # ... but the session gets to them 5 s later: every frame but the newest is late
        gate.set()
        frames = list(session.frames(timeout=30))
        stats = session.stats()
    # the newest frame of each batch is shown, and the last few that only the end of the stream made
    assert stats.frames == len(frames) <= 6 and stats.frames + stats.dropped == 50
    assert frames[-1].index == 49  # the newest frame is always shown


def test_video_session_from_a_file_at_real_time_pace(portrait):
    with LiveSession(portrait, LiveOptions(driver="video", size=256)) as session:
        source = VideoFileSource(session, DRIVING).start()
        frames = list(session.frames(timeout=30))
        source.join()
        stats = session.stats()
    assert source.error is None
    assert stats.frames == len(frames) and stats.frames + stats.dropped == 100  # 4.0 s at 25 fps
    assert stats.frames >= 50 and 0 < stats.latency_p50_ms < 1000
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    moved = np.abs(np.stack([f.points for f in frames]) - frames[0].points).max()
    assert moved > 2.0  # the driving head turns


def test_wrong_input_kind_is_refused(portrait):
    with LiveSession(portrait, LiveOptions(driver="audio", size=256)) as session:
        with pytest.raises(InputError):
            session.push_video(np.zeros((8, 8, 3), np.uint8), 0.0)


def test_live_command_records_with_aligned_audio(tmp_path, portrait_path, speech_path):
    out = tmp_path / "rec.mp4"
    proc = subprocess.run([sys.executable, "-m", "portrait_studio", "live", "--image", str(portrait_path),
                           "--audio", str(speech_path), "--size", "256", "-o", str(out), "--stats"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"frames", "dropped", "fps", "latency_p50_ms", "latency_p95_ms"} <= stats.keys()
    assert stats["frames"] + stats["dropped"] == 178
    probe = probe_video(out)
    assert probe.video_codec == "h264" and probe.audio_codec == "aac"
    assert probe.frames == 178 and abs(probe.duration - 7.12) < 0.1
    assert not list(tmp_path.glob(".*"))  # no temporary files left


@pytest.mark.parametrize("args, message", [
    (["--mic"], "mic"),
    (["--webcam", "7", "--stats"], "no webcam at index 7"),
    (["--audio", "missing.wav", "--stats"], "--audio file not found"),
    (["--audio", "SPEECH", "--virtual-camera"], "virtual camera"),
    (["--audio", "SPEECH"], "live needs an output"),
    (["--audio", "SPEECH", "--window"], "--window needs a display"),
    (["--audio", "SPEECH", "-o", "out.avi"], "unsupported output extension"),
])
def test_live_command_fails_with_one_line(tmp_path, capsys, portrait_path, speech_path, args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)  # no display here (CI): --window must refuse, not abort
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    args = [str(speech_path) if a == "SPEECH" else a for a in args]
    if args[0] == "--mic":
        args += ["--stats"]
    assert main(["live", "--image", str(portrait_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not list(tmp_path.iterdir())
