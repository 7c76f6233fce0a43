"""Time-base plumbing for sampled face signals: gap filling, zero-phase smoothing, resampling to an fps.

A driving video gives one sample per decoded frame at that frame's own timestamp (24, 25, 29.97, 60 fps,
or variable). Everything here works on those timestamps rather than on frame counts, so a 29.97 fps clip
resampled to 25 fps stays in sync to the last frame (no 0.1 % drift: 3.6 frames an hour).

- `fill_gaps`: samples where no face was found are linearly interpolated between the nearest found
  samples, and held at the ends.
- `smooth`: a centred Gaussian (zero phase: a mouth opening stays where it happened, only its edges
  soften), with sigma in seconds converted to samples at the signal's median sample rate.
- `resample`: output frame k shows time k / fps, linearly interpolated between the bracketing samples;
  before the first sample the first value is held. After the last sample (`end_time`), the value is
  held (`tail="hold"`) or eased to zero with a raised cosine over `ease_s` (`tail="neutral"`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d

TailMode = Literal["hold", "neutral"]


def output_times(num_frames: int, fps: float) -> np.ndarray:
    """float64 [num_frames]: the time (s) shown by each output frame, k / fps."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return np.arange(num_frames, dtype=np.float64) / float(fps)


def _check_series(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if times.ndim != 1 or values.ndim < 1 or values.shape[0] != times.shape[0]:
        raise ValueError(f"times must be [N] and values [N, ...]; got {times.shape} and {values.shape}")
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("sample times must increase strictly")
    return times, values


def fill_gaps(times: np.ndarray, values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Values at every sample, those where `found` is False interpolated from the found ones.

    times: [N] seconds, increasing; values: [N, C] (rows where not found are ignored); found: bool [N]
    with at least one True. Returns float64 [N, C]: linear between the nearest found samples, held
    before the first and after the last.
    """
    times, values = _check_series(times, values)
    found = np.asarray(found, dtype=bool)
    if found.shape != times.shape:
        raise ValueError(f"found must be [N]={times.shape}, got {found.shape}")
    if not found.any():
        raise ValueError("fill_gaps needs at least one found sample")
    if found.all():
        return values.copy()
    flat = values.reshape(len(times), -1)  # [N, ...] -> [N, C]
    filled = np.stack([np.interp(times, times[found], flat[found, c]) for c in range(flat.shape[1])], axis=1)
    return filled.reshape(values.shape)


def smooth(times: np.ndarray, values: np.ndarray, sigma_s: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along time: values [N, C] -> float64 [N, C].

    sigma_s: standard deviation in seconds (0 = unchanged). Converted to samples with the median
    sample interval; edges are padded with the edge value (mode "nearest"), so the ends do not sag.
    """
    times, values = _check_series(times, values)
    if sigma_s < 0:
        raise ValueError(f"sigma_s must be >= 0, got {sigma_s}")
    if sigma_s == 0 or len(times) < 2:
        return values.copy()
    step = float(np.median(np.diff(times)))
    return gaussian_filter1d(values, sigma_s / step, axis=0, mode="nearest")


def resample(times: np.ndarray, values: np.ndarray, out_times: np.ndarray, end_time: float | None = None,
             tail: TailMode = "hold", ease_s: float = 0.4) -> np.ndarray:
    """Values at `out_times`, linear between the bracketing samples.

    times: [N] seconds, increasing (N >= 1); values: [N, C]; out_times: [M] seconds.
    end_time: where the signal ends (default: the last sample's time). Before times[0] the first value
    is held; between the last sample and `end_time` the last value is held; after `end_time` it is
    held (`tail="hold"`) or eased to 0 over `ease_s` seconds (`tail="neutral"`, raised cosine).
    Returns float64 [M, C].
    """
    times, values = _check_series(times, values)
    if len(times) == 0:
        raise ValueError("resample needs at least one sample")
    if tail not in ("hold", "neutral"):
        raise ValueError(f"tail must be 'hold' or 'neutral', got {tail!r}")
    out_times = np.asarray(out_times, dtype=np.float64)
    flat = values.reshape(len(times), -1)  # [N, ...] -> [N, C]
    out = np.stack([np.interp(out_times, times, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    if tail == "neutral":
        end = float(times[-1] if end_time is None else end_time)
        late = np.clip((out_times - end) / max(ease_s, 1e-9), 0.0, 1.0)  # [M] 0 at the end, 1 after the ease
        out *= (0.5 + 0.5 * np.cos(np.pi * late))[:, None]
    return out.reshape((len(out_times),) + values.shape[1:])
