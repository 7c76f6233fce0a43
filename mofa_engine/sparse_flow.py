"""Sparse motion hints from landmarks: MOFA-Video paper Eq. 2 (spec §2.1) and the 384 grid (§2.4).

A landmark track `[T, K, 2]` (x = column, y = row, frame 0 = the portrait) becomes, for every frame
t = 1..T-1, a flow image that is zero everywhere except at the pixel under each reference landmark,
where it holds that landmark's displacement `L[t, k] - L[0, k]`, and a mask that is 1 at the same
pixels. The published CMP network densifies these hints on a 384x384 grid, so the MOFA pipeline
builds them on landmarks rescaled with `rescale_to_grid` (`x384 = x / W * 384`) and brings the dense
result back with `flow_from_grid`. Both engines share these functions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .cmp_grid import CMP_SIZE


def _as_points(points: torch.Tensor | np.ndarray, name: str = "landmarks") -> torch.Tensor:
    """Landmarks as a floating torch tensor `[..., K, 2]`; numpy input is converted, torch kept as is."""
    if isinstance(points, np.ndarray):
        points = torch.from_numpy(np.ascontiguousarray(points))
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(points).__name__}")
    if points.ndim < 2 or points.shape[-1] != 2:
        raise ValueError(f"{name} must have shape [..., K, 2], got {tuple(points.shape)}")
    if not points.is_floating_point():
        points = points.to(torch.float32)
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"{name} contain non-finite values (NaN or inf)")
    return points


def _check_size(height: int, width: int) -> None:
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"height and width must be positive, got height={height}, width={width}")


def rescale_to_grid(
    points: torch.Tensor | np.ndarray, height: int, width: int, size: int = CMP_SIZE
) -> torch.Tensor:
    """Rescale pixel points of an `height x width` image onto a `size x size` grid (spec §2.1).

    points: `[..., 2]` float (x, y) pixels, torch or numpy. Returns a tensor of the same floating dtype
    (`x / W * size`, `y / H * size`, kept fractional). The reference computes this in fp16; pass a
    half tensor to reproduce its quantisation, fp32 is the accepted deviation.
    """
    _check_size(height, width)
    pts = _as_points(points, "points")
    scale = torch.tensor([size, size], dtype=pts.dtype, device=pts.device)
    denom = torch.tensor([width, height], dtype=pts.dtype, device=pts.device)
    return pts / denom * scale  # same operation order as the reference: x / W * 384


def _last_occurrence(index: torch.Tensor) -> torch.Tensor:
    """Positions k of `index [K]` that are the last occurrence of their value (sorted by value)."""
    unique, inverse = torch.unique(index, return_inverse=True)
    order = torch.arange(index.numel(), device=index.device)
    last = torch.full((unique.numel(),), -1, dtype=torch.long, device=index.device)
    return last.scatter_reduce(0, inverse, order, reduce="amax")


def keypoint_sparse_flow(
    landmarks: torch.Tensor | np.ndarray, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse forward flow and mask from a landmark track (paper Eq. 2, spec §2.1).

    landmarks: `[T, K, 2]` float pixels (x = column, y = row) on a `height x width` grid, frame 0 =
        the reference; torch or numpy (K = 68 for the iBUG layout, any K works).
    Returns `(flow, mask)`, both float32 `[T-1, 2, height, width]` on the landmarks' device:
        `flow[t-1, :, row, col] = (dx, dy) = L[t, k] - L[0, k]` at `row = int(L[0, k].y)`,
        `col = int(L[0, k].x)` (truncation toward zero, then clamped into the grid), zero elsewhere;
        `mask` is 1 at those pixels in both channels, 0 elsewhere.
    Duplicates: when several landmarks fall on the same pixel the one with the highest index k wins
    (the reference's CUDA scatter keeps an unspecified one; this rule is deterministic).
    """
    _check_size(height, width)
    pts = _as_points(landmarks)
    if pts.ndim != 3:
        raise ValueError(f"landmarks must have shape [T, K, 2], got {tuple(pts.shape)}")
    num_frames, num_points = pts.shape[:2]
    if num_frames < 1:
        raise ValueError("landmarks must hold at least one frame (the reference), got T=0")
    disp = (pts[1:] - pts[:1]).to(torch.float32)  # [T-1, K, 2]
    cols = pts[0, :, 0].trunc().long().clamp(0, width - 1)  # int() truncates toward zero
    rows = pts[0, :, 1].trunc().long().clamp(0, height - 1)
    pixel = rows * width + cols  # [K] flat index into H*W

    keep = _last_occurrence(pixel)  # [K'] landmark index winning each occupied pixel
    flow = torch.zeros(num_frames - 1, 2, height * width, dtype=torch.float32, device=pts.device)
    mask = torch.zeros_like(flow)
    if num_points and num_frames > 1:
        flow[:, :, pixel[keep]] = disp[:, keep, :].transpose(1, 2)  # [T-1, K', 2] -> [T-1, 2, K']
        mask[:, :, pixel[keep]] = 1.0
    shape = (num_frames - 1, 2, height, width)  # [T-1, 2, H*W] -> [T-1, 2, H, W]
    return flow.view(shape), mask.view(shape)


def keypoint_sparse_flow_384(
    landmarks: torch.Tensor | np.ndarray, height: int, width: int, size: int = CMP_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """`keypoint_sparse_flow` on landmarks rescaled to the CMP grid: what CMP consumes (spec §2.1).

    landmarks: `[T, K, 2]` float pixels of a `height x width` image. Returns float32
    `(flow, mask)` `[T-1, 2, size, size]`, the flow in grid pixels.
    """
    return keypoint_sparse_flow(rescale_to_grid(landmarks, height, width, size), size, size)


def flow_from_grid(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bring a dense grid flow back to `height x width` (spec §2.4).

    flow: float `[..., 2, h, w]` (e.g. `[T-1, 2, 384, 384]`), channel 0 = dx, 1 = dy in grid pixels.
    Nearest upsampling (source index `floor(dst * h / H)`), then dx scaled by `W / w` and dy by
    `H / h`. Returns `[..., 2, height, width]` in image pixels.
    """
    _check_size(height, width)
    if flow.ndim < 3 or flow.shape[-3] != 2:
        raise ValueError(f"flow must have shape [..., 2, h, w], got {tuple(flow.shape)}")
    lead, (grid_h, grid_w) = flow.shape[:-3], flow.shape[-2:]
    flat = flow.reshape(-1, 2, grid_h, grid_w)  # [..., 2, h, w] -> [N, 2, h, w]
    up = F.interpolate(flat, size=(height, width), mode="nearest")
    scale = torch.tensor([width / grid_w, height / grid_h], dtype=up.dtype, device=up.device)
    up = up * scale.view(1, 2, 1, 1)
    return up.reshape(*lead, 2, height, width)  # [N, 2, H, W] -> [..., 2, H, W]
