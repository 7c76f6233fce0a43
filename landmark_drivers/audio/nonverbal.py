"""What a speaking face does besides the mouth: blinks, head motion and brow raises, seeded.

- Blinks: a renewal process with gamma-distributed gaps (mean 3.4 s, never under 0.6 s; measured
  14-18 blinks a minute over seeds) and 150-250 ms blinks (a fast close, a short hold, a slower opening). Blinks are
  physiological, so they do not depend on `expressiveness`: a face that never blinks looks dead.
- Head: slow idle sway (yaw 1.6, pitch 1.1, roll 0.8 degrees rms) that livens while speaking, plus
  prosodic nods: the chin dips on energy peaks (stressed syllables) and lifts a little on pitch accents.
  Translation follows the rotation (a sway, not a separate wobble). Frame 0 is exactly the portrait's
  own pose (the sway eases in over 0.8 s). Scaled by `head_motion`.
- Brows: browInnerUp/browOuterUp rise with pitch accents (f0 above its local trend) and a little with
  emphasis; eyes widen slightly on the strongest accents. Scaled by `expressiveness`.

Prosody is read from `AcousticFeatures`; all smoothing is zero-phase (Gaussian), so gestures line up
with the syllables that cause them. The same seed always gives the same motion.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..blendshapes import NUM_BLENDSHAPES, blendshape_index
from .acoustic import AcousticFeatures, loudness_at_frames, to_frames

BLINKS_PER_MINUTE = 17.5  # sets the mean gap (60 / this); people blink ~15-20 times a minute talking
BLINK_GAP_SHAPE = 2.5  # gamma shape of the gaps between blinks (1 = Poisson; larger = more regular)
MIN_BLINK_GAP_S = 0.6
BLINK_DURATION_S = (0.15, 0.25)  # uniform range of one blink, closing to fully open again
IDLE_ROTATION_DEG = np.array([1.6, 1.1, 0.8])  # rms (yaw, pitch, roll) of the slow sway
IDLE_TIMESCALE_S = 0.7  # Gaussian sigma of the sway's smoothing
NOD_DEG = 2.0  # chin dip on a full-strength stressed syllable
ACCENT_LIFT_DEG = 1.0  # chin lift on a full-strength pitch accent
MAX_ROTATION_DEG = 8.0  # hard limit per axis at head_motion = 1
BROW_RAISE = 0.45  # brow weight on a full-strength accent


def blink_track(num_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure per frame, float32 [T] in [0, 1] (1 = closed).

    A frame shows the most closed moment within its interval, so even a 150 ms blink at 24 fps reaches
    full closure in at least one frame.
    """
    out = np.zeros(num_frames, np.float32)
    duration = num_frames / fps
    mean_gap = 60.0 / BLINKS_PER_MINUTE
    t = float(rng.uniform(0.3, mean_gap))
    sub = 5
    times = ((np.arange(num_frames)[:, None] + np.arange(sub)[None, :] / (sub - 1)) / fps)  # [T, 5]
    while t < duration:
        length = float(rng.uniform(*BLINK_DURATION_S))
        lo, hi = int(np.floor(t * fps)), int(np.ceil((t + length) * fps)) + 1
        seg = slice(max(lo, 0), min(hi, num_frames))
        out[seg] = np.maximum(out[seg], _blink_profile((times[seg] - t) / length).max(1))
        t += length + max(MIN_BLINK_GAP_S, float(rng.gamma(BLINK_GAP_SHAPE, mean_gap / BLINK_GAP_SHAPE)))
    return out


def _blink_profile(u: np.ndarray) -> np.ndarray:
    """Closure at normalised time u in [0, 1] of a blink: close over 0-0.3, hold to 0.45, open by 1."""
    close = np.sin(np.clip(u / 0.3, 0, 1) * np.pi / 2) ** 2
    reopen = np.cos(np.clip((u - 0.45) / 0.55, 0, 1) * np.pi / 2) ** 2
    return np.where((u >= 0) & (u <= 1), np.where(u < 0.3, close, reopen), 0.0)


def prosody(features: AcousticFeatures, num_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame prosody, each float32 [T] in [0, 1]: (speaking, emphasis, accent).

    speaking: smoothed loudness (is the person talking). emphasis: loudness above its 0.8 s trend
    (stressed syllables). accent: f0 above its 1 s trend, in units of 4 semitones, on voiced frames.
    """
    if num_frames == 0:
        empty = np.zeros(0, np.float32)
        return empty, empty, empty
    loud = loudness_at_frames(features, num_frames, fps).astype(np.float64)
    speaking = np.clip(gaussian_filter1d(loud, 0.3 * fps, mode="nearest") * 1.5, 0, 1)
    emphasis = np.clip((loud - gaussian_filter1d(loud, 0.8 * fps, mode="nearest")) * 2.0, 0, 1)
    f0 = features.f0.astype(np.float64)
    voiced = np.isfinite(f0)
    accent = np.zeros(num_frames)
    if voiced.sum() >= 3:
        semitones = np.full_like(f0, np.nan)
        semitones[voiced] = 12.0 * np.log2(f0[voiced] / np.median(f0[voiced]))
        st = to_frames(semitones, features.rate, num_frames, fps).astype(np.float64)  # [T], NaN unvoiced
        has = np.isfinite(st)
        if has.sum() >= 2:
            filled = np.interp(np.arange(num_frames), np.flatnonzero(has), st[has])
            trend = gaussian_filter1d(filled, 1.0 * fps, mode="nearest")
            accent = np.clip((filled - trend) / 4.0, 0, 1) * has
    return speaking.astype(np.float32), emphasis.astype(np.float32), accent.astype(np.float32)


def head_motion(num_frames: int, fps: float, rng: np.random.Generator, speaking: np.ndarray,
                emphasis: np.ndarray, accent: np.ndarray, amount: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Head rotation (yaw, pitch, roll) in degrees and translation, both float32 [T, 3]; 0 = still.

    speaking/emphasis/accent: float32 [T] in [0, 1] from `prosody`. `amount` scales everything.
    """
    rotation = np.zeros((num_frames, 3), np.float32)
    translation = np.zeros((num_frames, 3), np.float32)
    if num_frames == 0 or amount == 0:
        return rotation, translation
    sway = _smooth_noise(rng, num_frames, IDLE_TIMESCALE_S * fps, 3) * IDLE_ROTATION_DEG  # [T, 3]
    jitter = _smooth_noise(rng, num_frames, 0.15 * fps, 3) * (0.35 * IDLE_ROTATION_DEG)  # [T, 3]
    liveliness = (0.6 + 0.4 * speaking)[:, None]
    rot = sway * liveliness + jitter * speaking[:, None]
    nod = gaussian_filter1d(emphasis.astype(np.float64), 0.08 * fps, mode="nearest")
    lift = gaussian_filter1d(accent.astype(np.float64), 0.12 * fps, mode="nearest")
    rot[:, 1] += -NOD_DEG * nod + ACCENT_LIFT_DEG * lift
    fade = _fade_out(num_frames, fps)[:, None]  # [T, 1]: frame 0 is the portrait's own pose
    rot -= rot[:1] * fade
    limit = MAX_ROTATION_DEG * amount
    rotation[:] = np.clip(rot * amount, -limit, limit)
    # A sway of the whole head: shift with yaw/roll, a little dip with pitch, a breath of scale.
    translation[:, 0] = -0.004 * rotation[:, 0] + 0.003 * rotation[:, 2]
    translation[:, 1] = -0.003 * rotation[:, 1]
    depth = _smooth_noise(rng, num_frames, 1.0 * fps, 1)[:, 0]
    translation[:, 2] = 0.006 * amount * (depth - depth[0] * fade[:, 0])
    return rotation, translation


def _fade_out(num_frames: int, fps: float, seconds: float = 0.8) -> np.ndarray:
    """[T] from 1 at frame 0 to 0 after `seconds` (raised cosine)."""
    u = np.clip(np.arange(num_frames) / max(seconds * fps, 1.0), 0, 1)
    return 0.5 * (1.0 + np.cos(np.pi * u))


def brow_motion(accent: np.ndarray, emphasis: np.ndarray, fps: float, amount: float = 1.0) -> np.ndarray:
    """Brow raises and eye widening that follow the prosody: float32 [T, 52] (other channels 0)."""
    num_frames = accent.shape[0]
    out = np.zeros((num_frames, NUM_BLENDSHAPES), np.float32)
    if num_frames == 0 or amount == 0:
        return out
    raise_ = gaussian_filter1d(accent + 0.3 * emphasis.astype(np.float64), 0.1 * fps, mode="nearest")
    raise_ = np.clip(raise_ * BROW_RAISE * amount, 0, 1)
    for name, gain in (("browInnerUp", 1.0), ("browOuterUpLeft", 0.7), ("browOuterUpRight", 0.7),
                       ("eyeWideLeft", 0.25), ("eyeWideRight", 0.25)):
        out[:, blendshape_index(name)] = gain * raise_
    return out


def nonverbal_motion(features: AcousticFeatures, num_frames: int, fps: float, seed: int, head: float = 1.0,
                     expressiveness: float = 1.0, blinks: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blinks + brows as blendshapes [T, 52], head rotation [T, 3] (degrees), translation [T, 3]; float32.

    seed: non-negative int; each part draws from its own stream, so changing one never shifts another.
    """
    speaking, emphasis, accent = prosody(features, num_frames, fps)
    shapes = brow_motion(accent, emphasis, fps, expressiveness)
    if blinks:
        closure = blink_track(num_frames, fps, np.random.default_rng([seed, 1]))
        shapes[:, blendshape_index("eyeBlinkLeft")] = closure
        shapes[:, blendshape_index("eyeBlinkRight")] = closure
        for name in ("eyeWideLeft", "eyeWideRight"):  # a closing lid cannot be wide open
            shapes[:, blendshape_index(name)] *= 1.0 - closure
    rotation, translation = head_motion(num_frames, fps, np.random.default_rng([seed, 2]), speaking, emphasis,
                                        accent, head)
    return shapes, rotation, translation


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float, channels: int) -> np.ndarray:
    """Zero-phase Gaussian-smoothed white noise [n, channels] with unit rms in expectation.

    Normalised by the filter's theoretical gain (not the sample's std), so a short clip is not inflated.
    """
    sigma = max(float(sigma), 0.5)
    noise = rng.standard_normal((n, channels))
    gain = 1.0 / np.sqrt(2.0 * np.sqrt(np.pi) * sigma)  # std of N(0,1) noise after a unit-area Gaussian
    return gaussian_filter1d(noise, sigma, axis=0, mode="reflect") / gain
