"""Drift over time, per window of `window_s` seconds against the first window.

- colour: the mean CIELAB colour of a region over the window's frames (sRGB -> Lab per pixel, every
  second pixel), compared with the first window's by CIEDE2000. Regions: the face (inside the jaw line
  and brows, without the eyes and lips, which blink and speak) and the background (outside face,
  hair and neck; see `stillness.py`).
- sharpness: mean CPBD (`colour.cpbd`) of the window's sampled frames (up to `CPBD_PER_S` a second);
  `cpbd_relative` is each window's over the first's.
- geometry (with the source portrait): the mean, over the window's frames, of the distance between the
  frame's landmarks and the portrait's after the best similarity alignment (Procrustes), over the jaw,
  brows, nose and eyes (iBUG 0-47: not the speaking mouth), in the portrait's inter-ocular distances.

A trailing window shorter than half a window is merged into the one before it.
"""

from __future__ import annotations

import cv2
import numpy as np

from .colour import ciede2000, srgb_to_lab

CPBD_PER_S = 2.0  # sharpness samples per second of video
SHAPE_POINTS = slice(0, 48)  # iBUG points compared for face geometry (no mouth)


def face_colour_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool [H, W]: inside the jaw line and brows, outside the eyes and the outer lips (landmarks [68, 2])."""
    mask = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(np.concatenate([points[0:17], points[17:27]]).astype(np.float32))
    cv2.fillPoly(mask, [np.round(hull[:, 0] * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    for part in (points[36:42], points[42:48], points[48:60]):
        poly = cv2.convexHull(part.astype(np.float32))[:, 0]
        centre = poly.mean(0)
        grown = centre + 1.3 * (poly - centre)  # a margin around eyes and lips (lids, lip edges)
        cv2.fillPoly(mask, [np.round(grown * 16).astype(np.int32)], 0, cv2.LINE_8, 4)
    return mask.astype(bool)


def mean_lab(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour float64 [3] of `frame` (uint8 [H, W, 3] RGB) over bool `mask`, every second pixel.

    NaN [3] when the mask is empty.
    """
    sub, m = frame[::2, ::2], mask[::2, ::2]
    if not m.any():
        return np.full(3, np.nan)
    return srgb_to_lab(sub[m]).mean(0)


def procrustes_distance(points: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per frame, mean point distance after similarity alignment of points [T, 68, 2] onto source [68, 2].

    In units of the source's inter-ocular distance; NaN for frames without landmarks. Returns float64 [T].
    """
    src = np.asarray(source, np.float64)[SHAPE_POINTS]
    iod = float(np.linalg.norm(source[45] - source[36]))
    src_c = src - src.mean(0)
    out = np.full(len(points), np.nan)
    for t, frame in enumerate(np.asarray(points, np.float64)):
        p = frame[SHAPE_POINTS]
        if not np.isfinite(p).all():
            continue
        p_c = p - p.mean(0)
        u, s, vt = np.linalg.svd(p_c.T @ src_c)  # rotation that best maps p_c onto src_c
        d = np.sign(np.linalg.det(u @ vt))
        fix = np.diag([1.0, d])
        rot = u @ fix @ vt
        scale = (s * np.diag(fix)).sum() / max((p_c ** 2).sum(), 1e-12)
        aligned = scale * p_c @ rot
        out[t] = np.linalg.norm(aligned - src_c, axis=1).mean() / iod
    return out


def window_index(times: np.ndarray, window_s: float) -> np.ndarray:
    """int [T]: the window each frame time falls in (a short trailing window merged into the previous)."""
    times = np.asarray(times, np.float64)
    idx = np.floor(times / window_s).astype(int)
    if idx.size and idx.max() > 0:
        last = idx.max()
        if (times[-1] - last * window_s) < 0.5 * window_s:
            idx[idx == last] = last - 1
    return idx


def _per_window(values: np.ndarray, idx: np.ndarray, count: int) -> np.ndarray:
    """Mean of float [T] or [T, C] values per window (NaNs ignored) -> [W] or [W, C]."""
    values = np.asarray(values, np.float64)
    out = np.full((count,) + values.shape[1:], np.nan)
    for w in range(count):
        chunk = values[idx == w]
        if chunk.size:
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(chunk).all(axis=tuple(range(1, chunk.ndim))) if chunk.ndim > 1 else np.isfinite(chunk)
                if ok.any():
                    out[w] = chunk[ok].mean(0)
    return out


def _rounded(values: np.ndarray, digits: int = 4) -> list:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in values]


def drift(times: np.ndarray, face_lab: np.ndarray, background_lab: np.ndarray, cpbd_times: np.ndarray,
          cpbd_values: np.ndarray, geometry: np.ndarray | None, window_s: float) -> dict:
    """Per-window drift figures (lists, one value per window) from per-frame measurements.

    times: float [T] frame times (s); face_lab, background_lab: float [T, 3] (NaN rows = not measured);
    cpbd_times / cpbd_values: float [S] the sampled frames; geometry: float [T] or None.
    """
    idx = window_index(times, window_s)
    count = int(idx.max()) + 1 if idx.size else 0
    face, back = _per_window(face_lab, idx, count), _per_window(background_lab, idx, count)
    sharp = _per_window(cpbd_values, window_index(cpbd_times, window_s).clip(max=max(count - 1, 0)), count)
    out = {
        "window_s": window_s,
        "window_start_s": [round(w * window_s, 3) for w in range(count)],
        "color_de2000": _rounded(ciede2000(face, face[:1]) if count else np.zeros(0)),
        "color_de2000_background": _rounded(ciede2000(back, back[:1]) if count else np.zeros(0)),
        "cpbd": _rounded(sharp),
        "cpbd_relative": _rounded(sharp / sharp[0] if count and sharp[0] > 0 else np.full(count, np.nan)),
    }
    if geometry is not None:
        out["geometry"] = _rounded(_per_window(geometry, idx, count))
    return out
