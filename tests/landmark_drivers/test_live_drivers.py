"""Causal (live) drivers against the offline ones on the bundled media, and their causality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from landmark_drivers.audio.audio_driver import AudioDriverOptions, drive_from_audio
from landmark_drivers.blendshapes import blendshape_index
from landmark_drivers.live import (OneEuroFilter, StreamingAudioDriver, StreamingVideoDriver, frames_to_motion)
from landmark_drivers.live.audio import _Resampler
from landmark_drivers.video_driver import VideoDriverOptions, drive_from_video, read_video_frames

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "examples" / "speech.wav"
DRIVING = ROOT / "tests" / "fixtures" / "driving_carphone.mp4"
JAW = blendshape_index("jawOpen")


def _speech(rate: int = 16000) -> np.ndarray:
    from portrait_studio import media  # the app's decoder, for the test only

    return media.load_audio(SPEECH, rate)


def _stream(samples: np.ndarray, chunk: int, rate: int = 16000, **kw) -> list:
    driver = StreamingAudioDriver(rate, **kw)
    frames = []
    for i in range(0, samples.size, chunk):
        frames += driver.push(samples[i:i + chunk])
    return frames + driver.finish()


# ---------------------------------------------------------------------------------------------- One Euro

def test_one_euro_holds_a_constant_and_lags_a_step_without_overshoot():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    assert np.allclose([f(np.array([2.0]), t / 25) for t in range(10)], 2.0)
    f.reset()
    out = [float(f(np.array([0.0 if t < 5 else 1.0]), t / 25)[0]) for t in range(40)]
    assert out[5] < 0.5 and all(0 <= v <= 1 for v in out) and np.all(np.diff(out) >= -1e-12)
    assert out[-1] > 0.95
    fast = OneEuroFilter(min_cutoff=1.0, beta=5.0)
    quick = [float(fast(np.array([0.0 if t < 5 else 1.0]), t / 25)[0]) for t in range(40)]
    assert quick[7] > out[7]  # beta: a fast move is followed with less lag


# ---------------------------------------------------------------------------------------------- audio

def test_resampler_matches_resample_poly_at_any_chunking():
    x = _speech()[:16000]
    for rate, chunk in ((16000, 777), (48000, 960)):
        src = resample_poly(x, rate // 16000, 1) if rate != 16000 else x
        r = _Resampler(rate)
        y = np.concatenate([r.push(src[i:i + chunk]) for i in range(0, src.size, chunk)] + [r.push(np.zeros(0), True)])
        full = resample_poly(src, r.up, r.down)
        assert np.abs(y[:full.size] - full).max() < 1e-6


def test_streaming_audio_follows_the_offline_acoustic_driver():
    x = _speech()
    offline = drive_from_audio(x, 16000, AudioDriverOptions(language="acoustic"))
    live = frames_to_motion(_stream(x, 320), 25)
    assert live.num_frames == offline.num_frames
    assert np.corrcoef(live.blendshapes[:, JAW], offline.blendshapes[:, JAW])[0, 1] > 0.95
    assert np.abs(live.blendshapes[:, JAW] - offline.blendshapes[:, JAW]).mean() < 0.05
    blink = blendshape_index("eyeBlinkLeft")
    np.testing.assert_allclose(live.blendshapes[:, blink], offline.blendshapes[:, blink], atol=1e-6)  # same seed
    assert 0.3 < live.rotation.std(0).mean() < 3.0  # the head sways, within the offline's range
    assert np.abs(live.rotation[0]).max() < 1e-6  # the first frame is the portrait's own pose


def test_streaming_audio_uses_no_audio_beyond_its_lookahead():
    x = _speech()
    driver = StreamingAudioDriver(16000)
    assert driver.lookahead_s <= 0.125  # 100 ms of analysis, the 20 ms lead, 1.4 ms of resampling
    full = _stream(x, 160)
    k = 60  # frame 60 must appear exactly when the audio reaches its end plus the lookahead
    cut = int(np.ceil(((k + 1) / 25 + driver.lookahead_s) * 16000))
    early = driver.push(x[:cut - 40])
    assert len(early) == k  # frames 0..k-1
    truncated = early + driver.push(x[cut - 40:cut])
    assert len(truncated) == k + 1
    for a, b in zip(truncated, full[:len(truncated)], strict=True):  # what was made from the truncated input equals the full run
        np.testing.assert_array_equal(a.blendshapes, b.blendshapes)
        np.testing.assert_array_equal(a.rotation, b.rotation)


def test_streaming_audio_does_not_depend_on_chunk_size():
    x = _speech()[:16000 * 3]
    a, b = _stream(x, 160), _stream(x, 1234)
    assert len(a) == len(b) == 75
    assert max(np.abs(u.blendshapes - v.blendshapes).max() for u, v in zip(a, b, strict=True)) == 0.0


def test_streaming_audio_silence_keeps_the_mouth_closed():
    frames = _stream(np.zeros(16000 * 2, np.float32), 320)
    assert len(frames) == 50 and max(f.blendshapes[JAW] for f in frames) == 0.0


# ---------------------------------------------------------------------------------------------- video

@pytest.fixture(scope="module")
def video_runs():
    from landmark_drivers.face_analysis import FaceAnalyzer

    with FaceAnalyzer() as analyzer:
        offline = drive_from_video(DRIVING, VideoDriverOptions(fps=25, tail="hold"), analyzer=analyzer)
        decoded = list(read_video_frames(DRIVING))
        with StreamingVideoDriver(analyzer=analyzer) as driver:
            live = [driver.push(rgb, t) for t, rgb in decoded]
        with StreamingVideoDriver(analyzer=analyzer) as driver:
            half = [driver.push(rgb, t) for t, rgb in decoded[:len(decoded) // 2]]
        with StreamingVideoDriver(analyzer=analyzer) as driver:
            for t, rgb in decoded[:30]:
                driver.push(rgb, t)
            driver.set_neutral()
            neutral = [driver.push(rgb, t) for t, rgb in decoded[30:40]]
    return offline, decoded, live, half, neutral


def test_streaming_video_follows_the_offline_driver(video_runs):
    offline, decoded, live, _, _ = video_runs
    times = np.array([f.t for f in live])
    pick = np.clip(np.searchsorted(times, np.arange(offline.num_frames) / 25, side="right") - 1, 0, len(live) - 1)
    jaw = np.array([live[i].blendshapes[JAW] for i in pick])
    rot = np.stack([live[i].rotation for i in pick])
    assert np.corrcoef(jaw, offline.blendshapes[:, JAW])[0, 1] > 0.9
    for axis in range(3):
        assert np.corrcoef(rot[:, axis], offline.rotation[:, axis])[0, 1] > 0.85
    assert np.abs(rot - offline.rotation).mean() < 1.5  # degrees
    assert np.abs(live[0].rotation).max() < 1e-6 and np.abs(live[0].blendshapes).max() == 0  # reference = first


def test_streaming_video_uses_no_future_frames(video_runs):
    _, _, live, half, _ = video_runs
    for a, b in zip(half, live[:len(half)], strict=True):
        np.testing.assert_array_equal(a.blendshapes, b.blendshapes)
        np.testing.assert_array_equal(a.rotation, b.rotation)


def test_set_neutral_makes_the_current_face_the_portrait(video_runs):
    _, _, live, _, neutral = video_runs
    assert np.abs(live[30].rotation).max() > 1.0  # the driving head has moved by then
    assert np.abs(neutral[0].rotation).max() < 1e-6 and np.abs(neutral[0].translation).max() < 1e-9
