"""Drag trajectories and the motion brush: parsing, PCHIP, sparse flows (paper Eq. 4, spec §2.3).

Trajectory file (JSON, UTF-8)::

    {
      "trajectories": [
        [[120.0, 200.5], [130.0, 190.0], [150.0, 185.0]],
        [[300, 310]]
      ]
    }

`trajectories` is a list of drags; a drag is the list of points the user clicked, in order, as
`[x, y]` in pixels of the source image (x = column, y = row, origin at the top-left corner; the image
as it is handed to the engine, after any resize/crop). The first point is where the drag starts (what
moves); the last is where it ends at the last frame. Every point must be finite and inside the image
(`0 <= x < width`, `0 <= y < height`). A one-point drag means "keep this point still". An empty list is
allowed (no drag).

MOFA path (spec §2.3): points are truncated onto the 384 grid, interpolated by PCHIP to 25 points,
split by the motion brush into an in-brush and an out-of-brush group, each group summed into a sparse
flow for CMP; after CMP the in-brush dense flow is scaled by the brush and the two are combined.
Warp path: `trajectory_displacements` resamples drags to any number of frames in image pixels.
"""

from __future__ import annotations

import json
import sys
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from scipy.interpolate import PchipInterpolator

from mofa_engine.cmp_grid import CMP_SIZE

MODEL_LENGTH = 25  # points per trajectory on the MOFA path (the reference's model_length)

Trajectory = np.ndarray  # float64 [N, 2] (x, y) pixels, N >= 1


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def parse_trajectories(data: object, height: int, width: int) -> list[Trajectory]:
    """Validate trajectories and return them as float64 `[N_i, 2]` arrays (x, y pixels).

    data: the decoded JSON object `{"trajectories": [...]}` (see the module docstring), or directly
        the list of trajectories (each a sequence of `[x, y]` points, or an `[N, 2]` array).
    Raises ValueError naming the offending trajectory, point and value.
    """
    if isinstance(data, dict):
        if "trajectories" not in data:
            raise ValueError(f"trajectory data needs a 'trajectories' key, got keys {sorted(data)}")
        data = data["trajectories"]
    if isinstance(data, np.ndarray):
        data = list(data)
    if not isinstance(data, (list, tuple)):
        raise ValueError(f"trajectories must be a list of point lists, got {type(data).__name__}")
    result = []
    for i, traj in enumerate(data):
        if isinstance(traj, np.ndarray):
            traj = traj.tolist()
        if not isinstance(traj, (list, tuple)):
            raise ValueError(f"trajectory {i} must be a list of [x, y] points, got {traj!r}")
        if len(traj) < 1:
            raise ValueError(f"trajectory {i} has no points; it needs at least 1")
        points = []
        for j, point in enumerate(traj):
            if not isinstance(point, (list, tuple)) or len(point) != 2:
                raise ValueError(f"trajectory {i} point {j} must be [x, y], got {point!r}")
            if not all(_is_number(v) for v in point):
                raise ValueError(f"trajectory {i} point {j} must hold numbers, got {point!r}")
            x, y = float(point[0]), float(point[1])
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f"trajectory {i} point {j} is not finite: {point!r}")
            if not (0.0 <= x < width and 0.0 <= y < height):
                raise ValueError(
                    f"trajectory {i} point {j} = ({x}, {y}) lies outside the {width}x{height} image "
                    f"(need 0 <= x < {width}, 0 <= y < {height})"
                )
            points.append((x, y))
        result.append(np.asarray(points, dtype=np.float64))
    return result


def load_trajectories(path: str | Path, height: int, width: int) -> list[Trajectory]:
    """Read and validate a trajectory JSON file (format in the module docstring)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return parse_trajectories(data, height, width)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def pchip_resample(points: np.ndarray, length: int) -> np.ndarray:
    """PCHIP through `points [N, 2]` at parameters `linspace(0, 1, N)`, evaluated at `linspace(0, 1, length)`.

    Returns float64 `[length, 2]`; point 0 is the start. A 1-point trajectory is returned stationary
    (`length` copies): the reference crashes there (PchipInterpolator needs 2 nodes); no weights depend
    on that case, so this is a fix, not a deviation.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
        raise ValueError(f"points must have shape [N>=1, 2], got {points.shape}")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if len(points) == 1:  # fix of the reference crash: a single click stays where it is
        return np.repeat(points, length, axis=0)
    knots = np.linspace(0.0, 1.0, len(points))
    query = np.linspace(0.0, 1.0, length)
    # the reference builds one interpolator per coordinate; PCHIP is per component, so this is equal
    return np.stack([PchipInterpolator(knots, points[:, c])(query) for c in (0, 1)], axis=1)


def to_grid_points(points: np.ndarray, height: int, width: int, size: int = CMP_SIZE) -> np.ndarray:
    """`(int(x * size / W), int(y * size / H))` per point (spec §2.3: truncation before PCHIP).

    points: `[N, 2]` (x, y) image pixels. Returns float64 `[N, 2]` holding integers.
    """
    points = np.asarray(points, dtype=np.float64)
    grid = np.stack([points[:, 0] * size / width, points[:, 1] * size / height], axis=1)
    return np.trunc(grid)  # int() of a float truncates toward zero


def grid_trajectories(
    trajectories: Sequence[np.ndarray], height: int, width: int, length: int = MODEL_LENGTH,
    size: int = CMP_SIZE,
) -> list[np.ndarray]:
    """Trajectories on the CMP grid: truncate, then PCHIP to `length` points. Each float64 `[length, 2]`."""
    return [pchip_resample(to_grid_points(t, height, width, size), length) for t in trajectories]


def brush_to_255(brush, height: int, width: int) -> np.ndarray:
    """Motion-brush mask as float32 `[H, W]` on the reference's 0..255 scale.

    brush: `[H, W]` bool (True = painted), or numbers 0..255 (uint8, int or float; an array or a torch
    tensor). A mask whose
    maximum is <= 1 (e.g. 0/1 or 0..1) is taken as 0..1 and multiplied by 255.
    """
    torch = sys.modules.get("torch")  # a tensor exists only once torch is loaded (this module never loads it)
    if torch is not None and isinstance(brush, torch.Tensor):
        brush = brush.detach().cpu().numpy()
    brush = np.asarray(brush)
    if brush.shape != (height, width):
        raise ValueError(f"brush mask must have shape ({height}, {width}), got {brush.shape}")
    if brush.dtype == bool:
        return brush.astype(np.float32) * 255.0
    out = brush.astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError("brush mask contains non-finite values")
    lo, hi = float(out.min()), float(out.max())
    if lo < 0.0 or hi > 255.0:
        raise ValueError(f"brush mask values must lie in [0, 255], got range [{lo}, {hi}]")
    if 0.0 < hi <= 1.0:
        out = out * 255.0
    return out


def brush_to_grid(
    brush, height: int, width: int, size: int = CMP_SIZE
) -> np.ndarray:
    """The brush on the CMP grid exactly as the reference resizes it (spec §2.3).

    The reference asks `cv2.resize(mask, (384, 384), cv2.INTER_NEAREST)`, but the third positional
    argument is `dst`, so OpenCV's default bilinear interpolation runs; reproduced here because the
    in/out split (`== 255`) and the dense scaling depend on the fractional border values.
    Returns float32 `[size, size]` in 0..255.
    """
    return cv2.resize(brush_to_255(brush, height, width), (size, size), interpolation=cv2.INTER_LINEAR)


brush_to_384 = brush_to_grid  # the name the MOFA pipeline knows it by (the grid is 384 by default)


def resample_trajectory(points: np.ndarray, num_frames: int) -> np.ndarray:
    """A drag over a clip of `num_frames` frames, in image pixels (warp engine; no grid truncation).

    PCHIP through the clicked points at `linspace(0, 1, N)`, evaluated at `linspace(0, 1, num_frames)`:
    frame 0 is the start, the last frame the end. Returns float64 `[num_frames, 2]`.
    """
    return pchip_resample(points, num_frames)


def trajectory_displacements(
    trajectories: Sequence[np.ndarray], num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Starts `[K, 2]` and per-frame displacements `[num_frames, K, 2]` (float64 pixels) of K drags."""
    if not trajectories:
        return np.zeros((0, 2)), np.zeros((num_frames, 0, 2))
    paths = np.stack([resample_trajectory(t, num_frames) for t in trajectories], axis=1)  # [T, K, 2]
    return paths[0].copy(), paths - paths[:1]
