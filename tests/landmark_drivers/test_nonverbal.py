"""Blinks, head motion and brows: natural rates and sizes, seeded, scaled to stillness, following prosody."""

from __future__ import annotations

import numpy as np
import pytest

from landmark_drivers.audio.acoustic import analyze_audio
from landmark_drivers.blendshapes import blendshape_index
from landmark_drivers.audio.nonverbal import blink_track, head_motion, nonverbal_motion, prosody

BLINK = blendshape_index("eyeBlinkLeft")
BROWS = [blendshape_index(n) for n in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight")]


def _blinks(closure: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) frame of each run of closure > 0.5."""
    shut = np.concatenate([[False], closure > 0.5, [False]])
    edges = np.flatnonzero(np.diff(shut.astype(int)))
    return list(zip(edges[::2], edges[1::2] - 1, strict=True))


def _speech_like(sr: int = 16000, seconds: float = 6.0, accent_at: float = 3.0) -> np.ndarray:
    """Syllables of a harmonic vowel at 120 Hz, with one pitch accent (f0 up to 170 Hz) around `accent_at`."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 50 * np.exp(-(((t - accent_at) / 0.15) ** 2))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None)
    return (0.2 * voice * envelope).astype(np.float32)


@pytest.mark.parametrize("fps", [24, 30])
def test_blinks_at_a_natural_rate_and_duration(fps):
    minutes = 3
    closure = blink_track(minutes * 60 * fps, fps, np.random.default_rng(7))
    blinks = _blinks(closure)
    assert 12 * minutes <= len(blinks) <= 25 * minutes
    for first, last in blinks:
        assert closure[first: last + 1].max() > 0.95  # every blink closes the eyes fully
        assert (last - first + 1) / fps <= 0.25  # ... and briefly
    gaps = np.diff([first for first, _ in blinks]) / fps
    assert gaps.min() >= 0.6 and gaps.std() > 0.5  # irregular, never a flutter
    assert closure.min() == 0 and closure.max() <= 1


def test_one_minute_blink_count_for_several_seeds():
    counts = [len(_blinks(blink_track(60 * 25, 25, np.random.default_rng(s)))) for s in range(5)]
    assert all(8 <= c <= 30 for c in counts) and 13 <= np.mean(counts) <= 22, counts


def test_head_motion_is_a_few_degrees_and_scales_to_still():
    n, fps = 30 * 25, 25
    speaking = np.full(n, 0.8, np.float32)
    zeros = np.zeros(n, np.float32)
    rotation, translation = head_motion(n, fps, np.random.default_rng(0), speaking, zeros, zeros)
    rms = np.sqrt((rotation ** 2).mean(0))
    assert np.all(rms > 0.3) and np.all(rms < 4.0) and np.abs(rotation).max() <= 8.0
    assert np.abs(np.diff(rotation, axis=0)).max() < 1.0  # smooth: under a degree per frame
    assert np.abs(translation).max() < 0.1
    assert not rotation[0].any() and not translation[0].any()  # frame 0 is the portrait's own pose
    half, _ = head_motion(n, fps, np.random.default_rng(0), speaking, zeros, zeros, amount=0.5)
    assert np.allclose(half, 0.5 * rotation, atol=1e-5)
    still_r, still_t = head_motion(n, fps, np.random.default_rng(0), speaking, zeros, zeros, amount=0.0)
    assert not still_r.any() and not still_t.any()


def test_nods_and_brows_follow_the_prosody():
    sr, fps = 16000, 25
    x = _speech_like(sr, accent_at=3.0)
    feats = analyze_audio(x, sr)
    n = round(len(x) / sr * fps)
    speaking, emphasis, accent = prosody(feats, n, fps)
    assert speaking[20:130].min() > 0.5
    peak = int(np.argmax(accent))
    assert abs(peak - 3.0 * fps) <= 4, peak  # the accent is found where the pitch rises
    shapes, _, _ = nonverbal_motion(feats, n, fps, seed=0, blinks=False)
    brow = shapes[:, BROWS[0]]
    assert abs(int(np.argmax(brow)) - 3.0 * fps) <= 4
    assert brow.max() > 0.15 and brow[:40].max() < 0.5 * brow.max()


def test_expressiveness_and_head_motion_zero_are_still_but_blinks_stay():
    sr, fps = 16000, 25
    feats = analyze_audio(_speech_like(sr), sr)
    n = 150
    shapes, rotation, translation = nonverbal_motion(feats, n, fps, seed=3, head=0.0, expressiveness=0.0)
    assert not rotation.any() and not translation.any()
    assert not shapes[:, BROWS].any()
    assert shapes[:, BLINK].max() > 0.9  # blinks are physiological, not expression
    shapes, _, _ = nonverbal_motion(feats, n, fps, seed=3, blinks=False)
    assert not shapes[:, BLINK].any()


def test_seeded_determinism_and_variety():
    feats = analyze_audio(_speech_like(), 16000)
    a = nonverbal_motion(feats, 150, 25, seed=11)
    b = nonverbal_motion(feats, 150, 25, seed=11)
    c = nonverbal_motion(feats, 150, 25, seed=12)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    assert not np.allclose(a[1], c[1])  # different head motion
    assert not np.array_equal(a[0][:, BLINK], c[0][:, BLINK])  # different blinks


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_lengths(n):
    feats = analyze_audio(np.zeros(max(n, 1) * 640, np.float32), 16000)
    shapes, rotation, translation = nonverbal_motion(feats, n, 25, seed=0)
    assert shapes.shape == (n, 52) and rotation.shape == (n, 3) and translation.shape == (n, 3)
    assert np.isfinite(rotation).all()
