"""Blinks, head sway, nods and brow raises generated online, frame by frame, seeded.

The live counterpart of `nonverbal.py`, with the same ingredients and scales but causal filters:

- Blinks: the same renewal process drawn from the same random stream (`default_rng([seed, 1])`), so
  a live session blinks exactly when the offline driver does for the same seed and fps.
- Head: slow sway and faster jitter from white noise through two cascaded one-pole low-passes
  (normalised to unit rms by the filter's own gain), livened by speech; nods on energy peaks and a
  chin lift on pitch accents, from exponential moving averages instead of centred Gaussians. The first
  frame is the portrait's own pose; the sway eases in over 0.8 s.
- Brows: browInnerUp/browOuterUp and a little eye widening follow the pitch accents.
"""

from __future__ import annotations

import numpy as np

from ..audio import nonverbal as nv
from ..blendshapes import NUM_BLENDSHAPES, blendshape_index

_BLINK = (blendshape_index("eyeBlinkLeft"), blendshape_index("eyeBlinkRight"))
_BROWS = tuple((blendshape_index(n), g) for n, g in (("browInnerUp", 1.0), ("browOuterUpLeft", 0.7),
                                                      ("browOuterUpRight", 0.7)))
_WIDE = (blendshape_index("eyeWideLeft"), blendshape_index("eyeWideRight"))
FADE_IN_S = 0.8  # the sway eases in over this long (frame 0 = the portrait's own pose)


class _Ema:
    """One-pole low-pass with time constant `tau` seconds at `fps` samples per second."""

    def __init__(self, tau: float, fps: float, channels: int = 1) -> None:
        self.a = float(np.exp(-1.0 / max(tau * fps, 1e-6)))
        self.y = np.zeros(channels)
        self.started = False

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if not self.started:
            self.y, self.started = np.broadcast_to(x, self.y.shape).astype(np.float64), True
        else:
            self.y = self.a * self.y + (1.0 - self.a) * x
        return self.y


class _SmoothNoise:
    """Unit-rms smooth noise [channels] per step: white noise through two cascaded one-pole low-passes."""

    def __init__(self, rng: np.random.Generator, tau: float, fps: float, channels: int) -> None:
        self.rng, self.channels = rng, channels
        a = float(np.exp(-1.0 / max(tau * fps, 1e-6)))
        self.first, self.second = _Ema(tau, fps, channels), _Ema(tau, fps, channels)
        self.first.started = self.second.started = True  # start from rest, as a filter does
        h = (1 - a) ** 2 * (np.arange(1, 4000) * a ** np.arange(4000 - 1))  # impulse response of the cascade
        self.gain = float(np.sqrt((h ** 2).sum()))

    def __call__(self) -> np.ndarray:
        return self.second(self.first(self.rng.standard_normal(self.channels))) / self.gain


class OnlineNonverbal:
    """Per-frame blinks, brows (blendshapes [52]) and head (rotation [3] deg, translation [3]), causal."""

    def __init__(self, fps: float, seed: int, blinks: bool = True) -> None:
        self.fps = float(fps)
        self.blinks = blinks
        rng_blink = np.random.default_rng([seed, 1])
        rng_head = np.random.default_rng([seed, 2])
        self._blink_rng = rng_blink
        self._mean_gap = 60.0 / nv.BLINKS_PER_MINUTE
        self._blink_t = float(rng_blink.uniform(0.3, self._mean_gap))
        self._blink_len = float(rng_blink.uniform(*nv.BLINK_DURATION_S))
        self._sway = _SmoothNoise(rng_head, nv.IDLE_TIMESCALE_S, fps, 3)
        self._jitter = _SmoothNoise(rng_head, 0.15, fps, 3)
        self._depth = _SmoothNoise(rng_head, 1.0, fps, 1)
        self._speaking = _Ema(0.3, fps)
        self._trend = _Ema(0.8, fps)
        self._pitch_trend = _Ema(1.0, fps)
        self._nod = _Ema(0.08, fps)
        self._lift = _Ema(0.12, fps)
        self._brow = _Ema(0.1, fps)
        self._first_rot: np.ndarray | None = None
        self._first_depth = 0.0

    def _closure(self, t: int) -> float:
        """Eyelid closure of frame t (the most closed moment in its interval), advancing the blink process."""
        sub = (t + np.arange(5) / 4.0) / self.fps  # [5] times within the frame
        out = 0.0
        while True:
            start, length = self._blink_t, self._blink_len
            if start > sub[-1]:
                return out
            out = max(out, float(nv._blink_profile((sub - start) / length).max()))
            if start + length >= sub[-1]:
                return out  # this blink continues into the next frame
            gap = max(nv.MIN_BLINK_GAP_S, float(self._blink_rng.gamma(nv.BLINK_GAP_SHAPE,
                                                                        self._mean_gap / nv.BLINK_GAP_SHAPE)))
            self._blink_t = start + length + gap
            self._blink_len = float(self._blink_rng.uniform(*nv.BLINK_DURATION_S))

    def step(self, t: int, loudness: float, semitones: float, head: float = 1.0,
             expressiveness: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame t (in order, from 0): loudness in [0, 1], semitones of f0 over the speaker's median (NaN
        unvoiced). Returns float32 blendshapes [52], rotation [3] (degrees), translation [3]."""
        shapes = np.zeros(NUM_BLENDSHAPES, np.float32)
        speaking = float(np.clip(self._speaking(loudness)[0] * 1.5, 0, 1))
        emphasis = float(np.clip((loudness - self._trend(loudness)[0]) * 2.0, 0, 1))
        accent = 0.0
        if np.isfinite(semitones):
            accent = float(np.clip((semitones - self._pitch_trend(semitones)[0]) / 4.0, 0, 1))
        raise_ = float(np.clip(self._brow(accent + 0.3 * emphasis)[0] * nv.BROW_RAISE * expressiveness, 0, 1))
        for index, gain in _BROWS:
            shapes[index] = gain * raise_
        closure = self._closure(t) if self.blinks else 0.0
        for index in _WIDE:
            shapes[index] = 0.25 * raise_ * (1.0 - closure)
        for index in _BLINK:
            shapes[index] = closure
        # head
        sway = self._sway() * nv.IDLE_ROTATION_DEG
        jitter = self._jitter() * (0.35 * nv.IDLE_ROTATION_DEG)
        rot = sway * (0.6 + 0.4 * speaking) + jitter * speaking
        rot[1] += -nv.NOD_DEG * self._nod(emphasis)[0] + nv.ACCENT_LIFT_DEG * self._lift(accent)[0]
        depth = float(self._depth()[0])
        if self._first_rot is None:
            self._first_rot, self._first_depth = rot.copy(), depth
        fade = 0.5 * (1.0 + np.cos(np.pi * min(t / max(FADE_IN_S * self.fps, 1.0), 1.0)))
        rot = rot - self._first_rot * fade
        limit = nv.MAX_ROTATION_DEG * head
        rotation = np.clip(rot * head, -limit, limit)
        translation = np.array([-0.004 * rotation[0] + 0.003 * rotation[2], -0.003 * rotation[1],
                                0.006 * head * (depth - self._first_depth * fade)])
        return shapes, rotation.astype(np.float32), translation.astype(np.float32)
