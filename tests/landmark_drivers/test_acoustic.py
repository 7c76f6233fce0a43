"""Acoustic features and the language-independent mouth: synthetic vowels with known formants and envelopes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from landmark_drivers.audio.acoustic import (
    acoustic_mouth,
    analyze_audio,
    frame_centers,
    loudness_at_frames,
    to_frames,
)
from landmark_drivers.blendshapes import blendshape_index

JAW = blendshape_index("jawOpen")
PUCKER = blendshape_index("mouthPucker")
STRETCH = blendshape_index("mouthStretchLeft")


def vowel(f1: float, f2: float, seconds: float, sr: int, f0: float = 120.0) -> np.ndarray:
    """A source-filter vowel: an impulse train at f0 through resonators at F1, F2 and 2800 Hz."""
    n = int(seconds * sr)
    source = np.zeros(n)
    source[(np.arange(0, seconds, 1.0 / f0) * sr).astype(int)] = 1.0
    out = source
    for freq, bw in ((f1, 80.0), (f2, 100.0), (2800.0, 150.0)):
        r = np.exp(-np.pi * bw / sr)
        out = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / sr), r * r], out)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def syllables(sr: int, seconds: float = 4.0, rate_hz: float = 3.3) -> tuple[np.ndarray, np.ndarray]:
    """An /a/ whose loudness swings like syllables with pauses; returns (samples, envelope)."""
    t = np.arange(int(seconds * sr)) / sr
    envelope = np.clip(np.sin(2 * np.pi * rate_hz * t), 0, None) ** 1.5 * (1 + 0.5 * np.sin(2 * np.pi * 0.4 * t))
    return vowel(750, 1200, seconds, sr) * envelope.astype(np.float32), envelope


def _lag_of_peak(a: np.ndarray, b: np.ndarray, max_lag: int = 5) -> tuple[int, float]:
    """Lag (frames; > 0 means `a` is late) with the highest correlation, and that correlation."""
    a = (a - a.mean()) / a.std()
    b = (b - b.mean()) / b.std()
    corr = {lag: float(np.mean(a[lag:] * b[: len(b) - lag])) if lag >= 0 else float(np.mean(a[:lag] * b[-lag:]))
            for lag in range(-max_lag, max_lag + 1)}
    best = max(corr, key=corr.get)
    return best, corr[best]


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
def test_jaw_follows_the_loudness_envelope_without_lag(sr):
    x, envelope = syllables(sr)
    fps = 25
    num_frames = round(len(x) / sr * fps)
    mouth = acoustic_mouth(analyze_audio(x, sr), num_frames, fps)
    env = np.interp(frame_centers(num_frames, fps), np.arange(len(envelope)) / sr, envelope)
    lag, corr = _lag_of_peak(mouth[:, JAW], env)
    assert lag == 0 and corr > 0.8, (lag, corr)
    hop = len(x) / num_frames
    frame_peak = np.array([envelope[int(t * hop): int((t + 1) * hop)].max() for t in range(num_frames)])
    quiet = frame_peak < 0.01
    assert quiet.sum() > 20 and mouth[quiet, JAW].max() < 0.05  # closed in the gaps between syllables


def test_formants_of_synthetic_vowels():
    sr = 16000
    pause = np.zeros(int(0.3 * sr), np.float32)
    for f1, f2 in ((750, 1200), (300, 2300), (350, 800)):
        feats = analyze_audio(np.concatenate([pause, vowel(f1, f2, 0.6, sr), pause]), sr)
        assert np.nanmedian(feats.f1) == pytest.approx(f1, rel=0.15)
        assert np.nanmedian(feats.f2) == pytest.approx(f2, rel=0.15)
        assert np.nanmedian(feats.f0) == pytest.approx(120, rel=0.05)
        assert np.median(feats.voicing[40:-40]) > 0.7


def test_rounded_and_spread_vowels_shape_the_lips():
    """In one clip with /a/, /u/ and /i/: lips round on /u/ (low F2) and spread on /i/ (high F2)."""
    sr, fps = 16000, 25
    gap = np.zeros(int(0.2 * sr), np.float32)
    x = np.concatenate([vowel(750, 1200, 0.5, sr), gap, vowel(350, 800, 0.5, sr), gap, vowel(300, 2300, 0.5, sr)])
    mouth = acoustic_mouth(analyze_audio(x, sr), round(len(x) / sr * fps), fps)
    a, u, i = mouth[4:10], mouth[22:28], mouth[39:45]  # inside each vowel
    assert u[:, PUCKER].mean() > 0.2 > i[:, PUCKER].mean()
    assert i[:, STRETCH].mean() > 0.1 > u[:, STRETCH].mean()
    assert a[:, JAW].mean() > u[:, JAW].mean() and a[:, JAW].mean() > i[:, JAW].mean()
    assert mouth[14, JAW] < 0.05  # the gap between /a/ and /u/


def test_silence_steady_noise_and_empty_input_keep_the_mouth_shut():
    for x in (np.zeros(16000, np.float32), np.zeros(0, np.float32), np.full(1600, 1e-6, np.float32)):
        feats = analyze_audio(x, 16000)
        assert feats.loudness.max() == 0 and np.isnan(feats.f0).all()
        assert np.abs(acoustic_mouth(feats, 25, 25)).max() == 0
    hiss = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)  # steady: not speech
    assert acoustic_mouth(analyze_audio(hiss, 16000), 50, 25)[:, JAW].max() < 0.05


def test_a_single_word_in_a_long_noisy_silence_still_opens_the_mouth():
    sr, fps = 16000, 25
    x = np.random.default_rng(1).normal(0, 0.002, 60 * sr).astype(np.float32)  # -54 dBFS room noise
    x[30 * sr: 30 * sr + 8000] += vowel(750, 1200, 0.5, sr)
    mouth = acoustic_mouth(analyze_audio(x, sr), 60 * fps, fps)
    assert mouth[30 * fps + 3: 30 * fps + 10, JAW].min() > 0.3
    assert mouth[: 29 * fps, JAW].max() < 0.02 and mouth[31 * fps:, JAW].max() < 0.02


def test_articulation_scales_the_mouth_and_zero_frames_work():
    x, _ = syllables(16000, 2.0)
    feats = analyze_audio(x, 16000)
    full = acoustic_mouth(feats, 50, 25)
    assert np.allclose(acoustic_mouth(feats, 50, 25, articulation=0.5), 0.5 * full, atol=1e-6)
    assert np.abs(acoustic_mouth(feats, 50, 25, articulation=0.0)).max() == 0
    assert acoustic_mouth(feats, 0, 25).shape == (0, 52)
    assert loudness_at_frames(feats, 1, 25).shape == (1,)


def test_to_frames_averages_each_frame_interval():
    track = np.arange(100, dtype=np.float64)  # 1 s at 100 Hz, value = 10 ms index
    frames = to_frames(track, 100, 10, 10)  # 10 fps: frame t covers samples 10t .. 10t+9
    assert np.allclose(frames, np.arange(10) * 10 + 4.5)
    track[:20] = np.nan
    frames = to_frames(track, 100, 10, 10)
    assert np.isnan(frames[:2]).all() and np.isfinite(frames[2:]).all()
    assert np.isnan(to_frames(np.zeros(0), 100, 3, 25)).all()
