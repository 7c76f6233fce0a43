"""Temporal jitter of the face landmarks.

Measured on the rigid points (brows, nose, eye corners: iBUG 17-35, 36, 39, 42, 45), which move
with the head but not with speech or blinks, in units of the median inter-ocular distance:

- `accel_energy`: mean over frames and points of |p(t+1) - 2 p(t) + p(t-1)|^2 (smooth motion: ~0);
- `max_jump`: the largest frame-to-frame move, mean over the points, and when it happens.
"""

from __future__ import annotations

import numpy as np

from .lipsync import interocular

RIGID_POINTS = list(range(17, 36)) + [36, 39, 42, 45]


def jitter(points: np.ndarray, times: np.ndarray) -> dict:
    """Jitter figures from landmarks float [T, 68, 2] (NaN where no face) and frame times float [T]."""
    p = np.asarray(points, np.float64)[:, RIGID_POINTS]
    iod = interocular(np.asarray(points, np.float64))
    scale = float(np.nanmedian(iod)) if np.isfinite(iod).any() else float("nan")
    if len(p) < 3 or not scale > 0:
        return {"accel_energy": None, "max_jump": None, "max_jump_at_s": None}
    step = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean(-1) / scale  # [T-1]
    accel = (np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1) ** 2).mean(-1) / scale ** 2  # [T-2]
    if not np.isfinite(step).any():
        return {"accel_energy": None, "max_jump": None, "max_jump_at_s": None}
    j = int(np.nanargmax(step))
    return {"accel_energy": round(float(np.nanmean(accel)), 7) if np.isfinite(accel).any() else None,
            "max_jump": round(float(step[j]), 5), "max_jump_at_s": round(float(times[j + 1]), 3)}
