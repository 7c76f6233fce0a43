"""Drags as a smooth displacement field at full resolution: the warp engine's reading of trajectories."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from mofa_engine.trajectories import brush_to_255, trajectory_displacements

from .raster import sample_bilinear


class DragField:
    """Drags as a smooth displacement field at full resolution, for the warp engine (no CMP).

    trajectories: validated float `[N_i, 2]` pixel arrays; each is resampled to `num_frames` frames.
    brush: optional `[H, W]` motion-brush mask (see `brush_to_255`; painted >= 50%): a drag starting
        inside it moves the whole brushed region, the background around it following over twice the
        drag's length (several drags in one brush share it by distance); a drag starting outside
        moves a Gaussian bump around its start.
    radius: the bump's smallest sigma, in image short sides. Sigmas grow to 1.6x the drag's longest
        displacement, so a bump's slope stays below 0.4 and the field never folds on its own.
    """

    def __init__(self, trajectories: Sequence[np.ndarray], brush, num_frames: int, height: int, width: int,
                 radius: float = 0.06) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames, self.height, self.width = int(num_frames), int(height), int(width)
        self.starts, self.displacements = trajectory_displacements(trajectories, num_frames)  # [K,2], [T,K,2]
        reach = np.linalg.norm(self.displacements, axis=2).max(0) if len(self.starts) else np.zeros(0)
        side = min(height, width)
        self.sigma = np.maximum(radius * side, 1.6 * reach)  # [K]
        self.share_sigma = 0.3 * side  # how drags inside one brush share it
        self.in_brush = np.zeros(len(self.starts), dtype=bool)
        self.brush = None
        if brush is not None and len(self.starts):
            hard = brush_to_255(brush, height, width) >= 127.5
            cols = np.clip(self.starts[:, 0].astype(int), 0, width - 1)
            rows = np.clip(self.starts[:, 1].astype(int), 0, height - 1)
            self.in_brush = hard[rows, cols]
            if self.in_brush.any():
                # 1 on the brush, smoothstep to 0 over twice the longest drag outside it: slope <= 0.75
                band = max(4.0, 2.0 * float(reach[self.in_brush].max()))
                outside = cv2.distanceTransform((~hard).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
                z = np.clip(1.0 - outside / band, 0.0, 1.0)
                self.brush = (z * z * (3.0 - 2.0 * z)).astype(np.float32)

    def forward(self, x: np.ndarray, frame_index: int) -> np.ndarray:
        """Displacement `[G, 2]` (pixels) of portrait points x `[G, 2]` at frame `frame_index`."""
        out = np.zeros((len(x), 2))
        if not len(self.starts):
            return out
        disp = self.displacements[frame_index]  # [K, 2]
        d2 = ((x[:, None, :] - self.starts[None]) ** 2).sum(-1)  # [G, K]
        free = ~self.in_brush
        if free.any():
            out += np.exp(-0.5 * d2[:, free] / self.sigma[free] ** 2) @ disp[free]
        if self.brush is not None:
            share = np.exp(-0.5 * d2[:, self.in_brush] / self.share_sigma ** 2) + 1e-12
            share /= share.sum(1, keepdims=True)
            inside = sample_bilinear(self.brush, x)[:, 0]
            out += inside[:, None] * (share @ disp[self.in_brush])
        return out

    def backward(self, y: np.ndarray, frame_index: int, steps: int = 4) -> np.ndarray:
        """Backward displacement `[G, 2]` at output points y: x - y where x + J(x) = y.

        Fixed-point steps x <- y - J(x); they contract because J's slope stays below 0.75.
        """
        if not len(self.starts) or not np.any(self.displacements[frame_index]):
            return np.zeros((len(y), 2))
        x = y - self.forward(y, frame_index)
        for _ in range(steps - 1):
            x = y - self.forward(x, frame_index)
        return x - y
