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

__all__ = ["DragGroups", "DragHints", "drag_groups"]


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
