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
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.interpolate import PchipInterpolator

from mofa_engine.sparse_flow import CMP_SIZE

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


def brush_to_255(brush: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """Motion-brush mask as float32 `[H, W]` on the reference's 0..255 scale.

    brush: `[H, W]` bool (True = painted), or numbers 0..255 (uint8, int or float). A mask whose
    maximum is <= 1 (e.g. 0/1 or 0..1) is taken as 0..1 and multiplied by 255.
    """
    if isinstance(brush, torch.Tensor):
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
    brush: np.ndarray | torch.Tensor, height: int, width: int, size: int = CMP_SIZE
) -> np.ndarray:
    """The brush on the CMP grid exactly as the reference resizes it (spec §2.3).

    The reference asks `cv2.resize(mask, (384, 384), cv2.INTER_NEAREST)`, but the third positional
    argument is `dst`, so OpenCV's default bilinear interpolation runs; reproduced here because the
    in/out split (`== 255`) and the dense scaling depend on the fractional border values.
    Returns float32 `[size, size]` in 0..255.
    """
    return cv2.resize(brush_to_255(brush, height, width), (size, size), interpolation=cv2.INTER_LINEAR)


brush_to_384 = brush_to_grid  # the name the MOFA pipeline knows it by (the grid is 384 by default)


def trajectory_sparse_flow(
    trajectories: Sequence[np.ndarray],
    brush: np.ndarray | torch.Tensor | None,
    height: int,
    width: int,
    length: int = MODEL_LENGTH,
    size: int = CMP_SIZE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse flows of the in-brush and out-of-brush trajectory groups on the CMP grid (Eq. 4).

    trajectories: validated float `[N_i, 2]` arrays in image pixels (`parse_trajectories`).
    brush: `[H, W]` motion-brush mask (see `brush_to_255`) or None (no brush: every drag is out).
    Returns `(flow_in, mask_in, flow_out, mask_out)`, float32 `[length-1, 2, size, size]` each. For
    frame i = 1..length-1 a group holds, at pixel `(int(start_y), int(start_x))` of each of its
    trajectories, `int64(point_i - start)` per component (truncated toward zero) and mask 1; the
    trajectories of a group are summed (coinciding starts add flows and masks). A drag is in the brush
    iff the resized brush is exactly 255 at its start pixel.
    """
    grid = grid_trajectories(trajectories, height, width, length, size)
    brush_grid = brush_to_grid(brush, height, width, size) if brush is not None else None
    # [group, T-1, 2, size, size]; group 0 = in the brush, 1 = out. Sums of small integers: exact in fp32
    flows = torch.zeros(2, length - 1, 2, size, size, dtype=torch.float32)
    masks = torch.zeros_like(flows)
    for traj in grid:
        col, row = int(traj[0, 0]), int(traj[0, 1])
        inside = brush_grid is not None and brush_grid[row, col] == 255
        group = 0 if inside else 1
        disp = (traj[1:] - traj[0]).astype(np.int64)  # [length-1, 2]; int64 truncates toward zero
        flows[group, :, :, row, col] += torch.from_numpy(disp.astype(np.float32))
        masks[group, :, :, row, col] += 1.0
    return flows[0], masks[0], flows[1], masks[1]


def scale_in_brush_flow(flow_in: torch.Tensor, brush_grid: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Dense in-brush flow times `brush384 / 255` (spec §2.3), before upsampling.

    flow_in: float `[..., 2, size, size]` (CMP output of the in-brush group); brush_grid: `[size, size]`
    from `brush_to_grid` (0..255). Returns a tensor shaped like `flow_in`.
    """
    weight = torch.as_tensor(np.asarray(brush_grid), dtype=flow_in.dtype, device=flow_in.device) / 255.0
    if weight.shape != flow_in.shape[-2:]:
        raise ValueError(f"brush grid {tuple(weight.shape)} does not match flow {tuple(flow_in.shape)}")
    return flow_in * weight


def combine_brush_flows(flow_in: torch.Tensor, flow_out: torch.Tensor) -> torch.Tensor:
    """`where(all(flow_in != 0 over the 2 channels), flow_in, flow_out)` per pixel (spec §2.3).

    flow_in, flow_out: float `[..., 2, H, W]` dense flows of the two groups (same shape).
    """
    if flow_in.shape != flow_out.shape or flow_in.ndim < 3 or flow_in.shape[-3] != 2:
        raise ValueError(f"flows must share a [..., 2, H, W] shape, got {tuple(flow_in.shape)} "
                         f"and {tuple(flow_out.shape)}")
    take_in = (flow_in != 0).all(dim=-3, keepdim=True)  # [..., 1, H, W]
    return torch.where(take_in, flow_in, flow_out)


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
