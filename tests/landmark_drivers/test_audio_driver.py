"""The embedded audio driver end to end on real speech: sync, closures, silence, modes, edge cases, speed."""

from __future__ import annotations

import json
import time
from math import gcd

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from landmark_drivers import AudioDriverOptions, FaceMotion, drive_from_audio
from landmark_drivers.audio.audio_driver import MOUTH_LEAD_S
from landmark_drivers.blendshapes import blendshape_index
from landmark_drivers.audio.phonemes import PhoneSegment
from landmark_drivers.audio.visemes import MOUTH_CHANNELS, bilabial_frames, lip_aperture

JAW = blendshape_index("jawOpen")
MOUTH = [blendshape_index(n) for n in MOUTH_CHANNELS]
BROWS = [blendshape_index(n) for n in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight")]
BLINK = blendshape_index("eyeBlinkLeft")


def _load(path) -> tuple[np.ndarray, int]:
    sr, pcm = wavfile.read(path)
    return pcm.astype(np.float32) / 32768.0, sr


@pytest.fixture(scope="module")
def librivox(fixtures):
    x, sr = _load(fixtures / "speech_librivox_0870.wav")
    data = json.loads((fixtures / "speech_librivox_0870.phone.json").read_text())
    phones = [PhoneSegment(p["t"], p["b"], p["b"] + p["d"]) for w in data["w"] for p in w["w"]]
    return x, sr, (fixtures / "speech_librivox_0870.txt").read_text(), phones


@pytest.fixture(scope="module")
def spanish(fixtures):
    x, sr = _load(fixtures / "speech_es_mx_asterisk.wav")
    return x[: 15 * sr], sr  # 15 s is plenty and keeps the test short


def loudness_envelope(x: np.ndarray, sr: int, num_frames: int, fps: float) -> np.ndarray:
    """RMS of the samples inside each video frame's interval, [T]."""
    edges = (np.arange(num_frames + 1) * sr / fps).astype(int)
    return np.array([np.sqrt(np.mean(x[a:b] ** 2)) if b > a else 0.0
                     for a, b in zip(edges[:-1], edges[1:], strict=True)])


def peak_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 5) -> tuple[int, float, float]:
    """(lag in frames with the highest correlation (> 0: `a` late), that correlation, correlation at lag 0)."""
    a = (a - a.mean()) / a.std()
    b = (b - b.mean()) / b.std()
    corr = {lag: float(np.mean(a[lag:] * b[: len(b) - lag])) if lag >= 0 else float(np.mean(a[:lag] * b[-lag:]))
            for lag in range(-max_lag, max_lag + 1)}
    best = max(corr, key=corr.get)
    return best, corr[best], corr[0]


def test_spanish_lips_follow_the_loudness_in_auto_mode(spanish):
    x, sr = spanish
    motion = drive_from_audio(x, sr, AudioDriverOptions())
    assert motion.num_frames == round(len(x) / sr * 25)
    lag, best, at_zero = peak_lag(motion.channel("jawOpen"), loudness_envelope(x, sr, motion.num_frames, 25))
    assert abs(lag) <= 1 and at_zero > 0.5, (lag, best, at_zero)
    lag, _, at_zero = peak_lag(lip_aperture(motion.blendshapes), loudness_envelope(x, sr, motion.num_frames, 25))
    assert abs(lag) <= 1 and at_zero > 0.5


@pytest.mark.parametrize("language", ["auto", "english", "acoustic"])
def test_english_lips_follow_the_loudness_in_every_mode(librivox, language):
    x, sr, _, _ = librivox
    motion = drive_from_audio(x, sr, AudioDriverOptions(language=language))
    lag, _, at_zero = peak_lag(motion.channel("jawOpen"), loudness_envelope(x, sr, motion.num_frames, 25))
    assert abs(lag) <= 1 and at_zero > 0.5, (lag, at_zero)


@pytest.mark.parametrize("fps", [24, 30])
def test_transcript_alignment_closes_the_lips_on_bilabials(librivox, fps):
    x, sr, text, reference = librivox
    motion = drive_from_audio(x, sr, AudioDriverOptions(fps=fps, transcript=text))
    # from the reference timings, not our own, MOUTH_LEAD_S earlier: the lips close before the sound they make
    ahead = [PhoneSegment(p.phone, p.start - MOUTH_LEAD_S, p.end - MOUTH_LEAD_S) for p in reference]
    closed = bilabial_frames(ahead, motion.num_frames, fps)
    aperture = lip_aperture(motion.blendshapes)
    assert closed.sum() >= 7 and aperture[closed].max() < 0.01
    assert aperture[~closed].max() > 0.3
    lag, _, at_zero = peak_lag(motion.channel("jawOpen"), loudness_envelope(x, sr, motion.num_frames, fps))
    assert abs(lag) <= 1 and at_zero > 0.5
    assert motion.channel("jawOpen")[: int(0.15 * fps)].max() < 0.05  # the clip opens with 0.2 s of silence


def test_silence_inside_speech_and_all_zero_input_keep_the_mouth_closed(librivox):
    x, sr, _, _ = librivox
    gap = np.zeros(sr, np.float32)
    motion = drive_from_audio(np.concatenate([x[: 3 * sr], gap, x[3 * sr:]]), sr)
    fps = 25
    inside = slice(int(3.15 * fps), int(3.85 * fps))
    assert motion.blendshapes[inside][:, MOUTH].max() < 0.02
    silent = drive_from_audio(np.zeros(3 * sr, np.float32), sr)
    assert silent.num_frames == 75
    assert not silent.blendshapes[:, MOUTH].any()
    assert silent.channel("eyeBlinkLeft").max() >= 0  # blinks allowed; values valid
    assert np.isfinite(silent.rotation).all()


@pytest.mark.parametrize("seconds", [0.0, 0.01, 0.04, 0.05, 0.3])
def test_very_short_audio(seconds):
    sr = 16000
    x = (0.3 * np.sin(np.arange(int(seconds * sr)) * 0.2)).astype(np.float32)
    motion = drive_from_audio(x, sr)
    assert isinstance(motion, FaceMotion)
    assert motion.num_frames == (max(1, round(len(x) / sr * 25)) if len(x) else 0)  # as the app's video
    assert motion.blendshapes.shape == (motion.num_frames, 52) and motion.rotation.shape == (motion.num_frames, 3)
    assert np.isfinite(motion.blendshapes).all() and np.all((motion.blendshapes >= 0) & (motion.blendshapes <= 1))


@pytest.mark.parametrize("fps", [24, 25, 30])
@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_frame_count_is_round_duration_times_fps(librivox, fps, sr):
    x, src_sr, _, _ = librivox
    g = gcd(src_sr, sr)
    y = resample_poly(x[: int(1.37 * src_sr)], sr // g, src_sr // g).astype(np.float32)[: int(1.3713 * sr)]
    motion = drive_from_audio(y, sr, AudioDriverOptions(fps=fps, language="acoustic"))
    assert motion.num_frames == round(len(y) / sr * fps)
    assert motion.fps == fps


def test_seeds_are_deterministic_and_distinct(librivox):
    x, sr, _, _ = librivox
    x = x[: 4 * sr]
    a = drive_from_audio(x, sr, AudioDriverOptions(seed=5))
    b = drive_from_audio(x, sr, AudioDriverOptions(seed=5))
    c = drive_from_audio(x, sr, AudioDriverOptions(seed=6))
    assert np.array_equal(a.blendshapes, b.blendshapes) and np.array_equal(a.rotation, b.rotation)
    assert not np.allclose(a.rotation, c.rotation)
    assert np.array_equal(a.blendshapes[:, MOUTH], c.blendshapes[:, MOUTH])  # the seed never changes the lips


def test_stillness_controls(librivox):
    x, sr, _, _ = librivox
    x = x[: 4 * sr]
    motion = drive_from_audio(x, sr, AudioDriverOptions(head_motion=0.0, expressiveness=0.0, seed=1))
    assert not motion.rotation.any() and not motion.translation.any()
    assert not motion.blendshapes[:, BROWS].any()
    assert motion.channel("jawOpen").max() > 0.3  # the lips still speak
    assert motion.blendshapes[:, BLINK].max() > 0.9  # and the eyes still blink
    mute = drive_from_audio(x, sr, AudioDriverOptions(articulation=0.0, language="acoustic"))
    assert not mute.blendshapes[:, MOUTH].any()
    lively = drive_from_audio(x, sr, AudioDriverOptions(expressiveness=2.0, seed=1, language="acoustic"))
    assert lively.blendshapes[:, BROWS].max() > 0


def test_progress_reports_the_driver_stage(librivox):
    x, sr, _, _ = librivox
    calls = []
    drive_from_audio(x[: sr], sr, AudioDriverOptions(language="acoustic"), progress=lambda *a: calls.append(a))
    assert calls[0] == ("driver", 0, 4) and calls[-1] == ("driver", 4, 4)
    assert all(stage == "driver" for stage, _, _ in calls)


def test_bad_inputs_raise_with_the_offending_value():
    with pytest.raises(ValueError, match="fps"):
        AudioDriverOptions(fps=0)
    with pytest.raises(ValueError, match="-1"):
        AudioDriverOptions(seed=-1)
    with pytest.raises(ValueError, match="head_motion"):
        AudioDriverOptions(head_motion=-0.5)
    with pytest.raises(ValueError, match="klingon"):
        AudioDriverOptions(language="klingon")
    with pytest.raises(ValueError, match="mono"):
        drive_from_audio(np.zeros((100, 2), np.float32), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        drive_from_audio(np.zeros(100, np.float32), 100)


def test_unalignable_transcript_falls_back_to_recognition(librivox):
    x, sr, _, _ = librivox
    motion = drive_from_audio(x[: 2 * sr], sr, AudioDriverOptions(transcript="a b c d e f g " * 40))
    assert motion.num_frames == 50 and motion.channel("jawOpen").max() > 0.2


def test_ten_seconds_of_speech_drive_in_well_under_three_seconds_of_cpu(spanish):
    x, sr = spanish
    x = x[: 10 * sr]
    start = time.process_time()
    drive_from_audio(x, sr)
    assert time.process_time() - start < 2.5
