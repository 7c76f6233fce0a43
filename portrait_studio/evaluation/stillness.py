"""Background stillness: how much the picture changes outside the face, hair and neck.

The background of frame t is every pixel outside the head region (`mofa_engine.face_region_mask`:
face, hair and neck, feathered) of frame 0 and of frame t (and of frame t-1 for the frame-to-frame
change), so a moving head never counts as a moving background. The change is the mean absolute
difference of the RGB values over those pixels, in grey levels (0-255).
"""

from __future__ import annotations

import numpy as np

from mofa_engine import face_region_mask

HEAD_MASK_LEVEL = 0.02  # feathered mask values above this count as head


def head_mask(points: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """bool [H, W]: the head (face, hair, neck) of landmarks [68, 2]; all False without landmarks."""
    if points is None or not np.isfinite(points).all():
        return np.zeros((height, width), bool)
    return face_region_mask(points, height, width, include_hair=True, include_neck=True) > HEAD_MASK_LEVEL


def mean_abs_change(a: np.ndarray, b: np.ndarray, background: np.ndarray) -> float:
    """Mean |a - b| (uint8 [H, W, 3] frames) over the bool [H, W] background, grey levels; NaN if empty."""
    if not background.any():
        return float("nan")
    return float(np.abs(a[background].astype(np.int16) - b[background].astype(np.int16)).mean())


def summary(to_previous: np.ndarray, to_first: np.ndarray) -> dict:
    """The `background` figures from per-frame changes (float [T], NaN where not measured)."""
    prev = np.asarray(to_previous, np.float64)[1:]
    first = np.asarray(to_first, np.float64)

    def stat(values: np.ndarray, fn) -> float | None:
        ok = values[np.isfinite(values)]
        return round(float(fn(ok)), 4) if ok.size else None

    return {"mad_mean": stat(prev, np.mean), "mad_max": stat(prev, np.max),
            "mad_vs_first_mean": stat(first, np.mean), "mad_vs_first_max": stat(first, np.max)}
