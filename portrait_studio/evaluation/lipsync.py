"""Lip sync and silence: the mouth's opening over time against the audio's loudness.

- mouth aperture (per frame): mean distance between the inner lips (iBUG 61-67, 62-66, 63-65) over the
  distance between the outer eye corners (36-45).
- loudness envelope (per frame): the audio's level in dB over the interval the frame is on screen,
  [t_k, t_k + 1/fps), floored 50 dB below the clip's loud (95th percentile) level.
- lip sync: Pearson correlation of aperture(t + lag) with loudness(t) for lags within +-0.6 s; the
  peak's value is `ncc`, its lag `lag_frames` (> 0: the mouth follows the sound; real speakers peak at
  0 or slightly below), refined to `lag_ms` by a parabola through the peak and its neighbours.
- silence: frames whose loudness is 30 dB or more below the loud level (or under -60 dBFS), in runs of
  at least 0.3 s, trimmed by 0.1 s at both ends (lips close and open around the sound); `open_fraction`
  is the share of those frames whose aperture exceeds the video's own closed mouth (the 5th percentile
  of its aperture: speech closes the lips now and then) by more than `OPEN_MARGIN` (portraits often
  rest with the lips slightly apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper, lower inner-lip points (iBUG, 0-based)
MAX_LAG_S = 0.6  # lags searched either side of 0
FLOOR_DB = 50.0  # the envelope is floored this far below the loud level
SILENCE_DB = 30.0  # silent: this far below the loud level ...
SILENCE_ABS_DBFS = -60.0  # ... or below this absolute level
MIN_SILENCE_S = 0.3  # shortest silent stretch counted
SILENCE_TRIM_S = 0.1  # trimmed from both ends of a stretch
OPEN_MARGIN = 0.05  # inter-ocular distances wider than the closed mouth: an open mouth
CLOSED_PERCENTILE = 5.0  # the video's closed mouth: this percentile of its aperture


def interocular(points: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance of landmarks float [..., 68, 2] -> [...] pixels."""
    return np.linalg.norm(points[..., 45, :] - points[..., 36, :], axis=-1)


def mouth_aperture(points: np.ndarray) -> np.ndarray:
    """Inner-lip opening over the inter-ocular distance, float64 [T] from landmarks [T, 68, 2] (NaN stays NaN)."""
    gaps = [np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in INNER_LIP_PAIRS]
    return np.mean(gaps, axis=0) / np.maximum(interocular(points), 1e-6)


def loudness_envelope(samples: np.ndarray, sample_rate: int, frame_times: np.ndarray, fps: float) -> np.ndarray:
    """Level in dB of `samples` (float [N], time 0 = sample 0) over [t_k, t_k + 1/fps) for each frame time.

    Frames beyond the audio get the floor. Returns float64 [T], floored `FLOOR_DB` below the loud level.
    """
    x = np.asarray(samples, np.float64)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    lo = np.clip(np.round(np.asarray(frame_times) * sample_rate).astype(np.int64), 0, x.size)
    hi = np.clip(np.round((np.asarray(frame_times) + 1.0 / fps) * sample_rate).astype(np.int64), 0, x.size)
    count = hi - lo
    power = np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), 0.0)
    level = 10.0 * np.log10(power + 1e-12)
    loud = float(np.percentile(level, 95)) if level.size else -120.0
    return np.maximum(level, loud - FLOOR_DB)


def _fill(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by linear interpolation (held at the ends); all-NaN stays all-NaN."""
    ok = np.isfinite(values)
    if ok.all() or not ok.any():
        return values
    idx = np.arange(values.size)
    return np.interp(idx, idx[ok], values[ok])


@dataclass(frozen=True)
class LipSync:
    """Aperture-vs-loudness correlation over lags."""

    ncc: float  # peak correlation in [-1, 1]
    lag_frames: int  # lag of the peak: > 0 = the mouth follows the sound
    lag_ms: float  # the peak's lag refined by a parabola, milliseconds
    ncc_at_zero: float  # the correlation at lag 0
    lags: np.ndarray  # int [L] lags searched
    curve: np.ndarray  # float64 [L] correlation per lag

    def to_dict(self) -> dict:
        return {"ncc": round(self.ncc, 4), "lag_frames": self.lag_frames, "lag_ms": round(self.lag_ms, 1),
                "ncc_at_zero": round(self.ncc_at_zero, 4),
                "curve": {int(k): round(float(c), 4) for k, c in zip(self.lags, self.curve, strict=True)}}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 1e-12 else float("nan")


def lip_sync(aperture: np.ndarray, envelope: np.ndarray, fps: float) -> LipSync:
    """Correlate aperture(t + lag) with envelope(t) (both float [T]) for |lag| <= MAX_LAG_S * fps frames."""
    a, e = _fill(np.asarray(aperture, np.float64)), np.asarray(envelope, np.float64)
    n = min(a.size, e.size)
    max_lag = max(1, min(int(round(MAX_LAG_S * fps)), n // 3))
    lags = np.arange(-max_lag, max_lag + 1)
    curve = np.array([_corr(a[max(0, k):n + min(0, k)], e[max(0, -k):n - max(0, k)]) for k in lags])
    if not np.isfinite(curve).any():
        return LipSync(float("nan"), 0, float("nan"), float("nan"), lags, curve)
    i = int(np.nanargmax(curve))
    offset = 0.0
    if 0 < i < lags.size - 1 and np.isfinite(curve[i - 1:i + 2]).all():
        y0, y1, y2 = curve[i - 1:i + 2]
        denom = y0 - 2 * y1 + y2
        offset = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    return LipSync(ncc=float(curve[i]), lag_frames=int(lags[i]), lag_ms=float((lags[i] + offset) * 1000.0 / fps),
                   ncc_at_zero=float(curve[max_lag]), lags=lags, curve=curve)


def silent_frames(envelope_db: np.ndarray, fps: float) -> np.ndarray:
    """Boolean [T]: frames inside the audio's silent stretches (see the module docstring)."""
    e = np.asarray(envelope_db, np.float64)
    if e.size == 0:
        return np.zeros(0, bool)
    loud = float(np.percentile(e, 95))
    quiet = (e <= loud - SILENCE_DB) | (e < SILENCE_ABS_DBFS)
    out = np.zeros_like(quiet)
    min_len, trim = int(round(MIN_SILENCE_S * fps)), int(round(SILENCE_TRIM_S * fps))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start >= min_len:
            out[start + trim:stop - trim] = True
    return out


def silence(aperture: np.ndarray, envelope_db: np.ndarray, fps: float) -> dict:
    """`open_fraction` of the silent frames with the mouth open, how many frames were silent, and the threshold."""
    quiet = silent_frames(envelope_db, fps)
    a = _fill(np.asarray(aperture, np.float64))
    n = min(quiet.size, a.size)
    quiet, a = quiet[:n], a[:n]
    measured = quiet & np.isfinite(a)
    threshold = float(np.nanpercentile(a, CLOSED_PERCENTILE)) + OPEN_MARGIN if np.isfinite(a).any() else np.nan
    fraction = float((a[measured] > threshold).mean()) if measured.any() else None
    return {"open_fraction": None if fraction is None else round(fraction, 4),
            "silent_frames": int(measured.sum()), "silent_seconds": round(float(measured.sum()) / fps, 3),
            "open_threshold": None if not np.isfinite(threshold) else round(threshold, 4)}
