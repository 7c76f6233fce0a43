"""The user's drags as paper Eq. 4 hints on the CMP grid, made for any frames on demand (spec §2.3).

`drag_groups` splits the drags by the motion brush (a drag is in the brush iff the grid brush is
exactly 255 at its start) and samples each group to `max(25, num_frames)` points; `DragHints` then
yields the sparse flow and mask of any chunk of frames, equal to `trajectory_sparse_flow`'s rows,
without holding the clip-long `[T-1, 2, 384, 384]` tensors.

Deviation from the reference (documented): the Hybrid demo samples every drag to 25 points and
renders at most 25 frames. For a clip of T > 25 frames each drag is sampled to T points instead, so
the drag spans the whole clip (frame t follows point t); for T <= 25 it is the reference's 25 points
(truncated to the clip).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .sparse_flow import CMP_SIZE
from .trajectories import MODEL_LENGTH, brush_to_grid, grid_trajectories

__all__ = ["DragGroups", "DragHints", "combine_brush_flows", "drag_groups", "scale_in_brush_flow",
           "trajectory_sparse_flow"]


class DragHints:
    """Eq. 4 sparse hints of one group of drags on the CMP grid, made for any frames on demand.

    paths: float64 `[K, L, 2]` drags on the grid (`grid_trajectories`: truncated, then PCHIP to L
    points, point t belongs to frame t). For frame t the flow holds, at each start pixel
    `(int(y0), int(x0))`, the sum of `int64(point_t - start)` of the drags starting there, and the mask
    their count (both channels); equal to `trajectory_sparse_flow`'s rows, one chunk at a time.
    """

    def __init__(self, paths: np.ndarray, size: int = CMP_SIZE) -> None:
        paths = np.asarray(paths, dtype=np.float64)
        if paths.ndim != 3 or paths.shape[0] < 1 or paths.shape[2] != 2:
            raise ValueError(f"paths must be [K>=1, L, 2], got {paths.shape}")
        self.size, self.length = size, paths.shape[1]
        cols, rows = paths[:, 0, 0].astype(np.int64), paths[:, 0, 1].astype(np.int64)
        self._pixel = torch.from_numpy(rows * size + cols)  # [K] flat start pixels
        disp = (paths[:, 1:] - paths[:, :1]).astype(np.int64).astype(np.float32)  # [K,L-1,2], truncated
        self._disp = torch.from_numpy(disp)
        self._mask = torch.zeros(2, size * size).index_add_(1, self._pixel, torch.ones(2, len(paths)))

    def flow(self, frames: torch.Tensor) -> torch.Tensor:
        """float32 `[n, 2, S, S]` hints for clip frames `frames` (LongTensor, 1..L-1)."""
        rows = self._disp[:, frames.cpu() - 1].permute(1, 2, 0)  # [K,n,2] -> [n,2,K]
        out = torch.zeros(len(frames), 2, self.size * self.size).index_add_(2, self._pixel, rows)
        return out.view(len(frames), 2, self.size, self.size)  # [n,2,S*S] -> [n,2,S,S]

    def mask(self, frames: torch.Tensor) -> torch.Tensor:
        """float32 `[n, 2, S, S]`: the number of drags starting at each pixel (the same for every frame)."""
        return self._mask.view(1, 2, self.size, self.size).expand(len(frames), -1, -1, -1)


DragGroups = tuple[DragHints | None, DragHints | None, np.ndarray | None]  # what `drag_groups` returns


def drag_groups(trajectories: Sequence[np.ndarray], brush: np.ndarray | None, height: int, width: int,
                num_frames: int, size: int = CMP_SIZE) -> DragGroups:
    """(in-brush hints, out-of-brush hints, brush on the grid 0..255 or None) of the user's drags.

    trajectories: float `[N_i, 2]` (x, y) drags in pixels of the `height x width` image; brush: bool
    or 0..255 `[height, width]` (the region the in-brush drags move), or None (every drag is out).
    A group without drags is None.
    """
    length = max(MODEL_LENGTH, num_frames)
    paths = grid_trajectories(list(trajectories), height, width, length, size)
    grid = brush_to_grid(brush, height, width, size) if brush is not None else None
    inside = [grid is not None and grid[int(p[0, 1]), int(p[0, 0])] == 255 for p in paths]
    groups = [[p for p, flag in zip(paths, inside, strict=True) if flag == want] for want in (True, False)]
    hints = [DragHints(np.stack(g), size) if g else None for g in groups]
    return hints[0], hints[1], grid


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
