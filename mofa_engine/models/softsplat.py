"""Forward soft-splatting in 'avg' mode (Niklaus & Liu, CVPR 2020), in plain PyTorch.

MOFA warps first-frame features to every later frame by *forward* splatting, not backward warping:
each source pixel (x, y) is pushed to (x + u, y + v) and its value is distributed over the four
integer neighbours of that point with bilinear weights. A ones channel is splatted alongside, and
the result is divided by (splatted ones + 1e-7), so overlapping contributions average and holes
become 0. The reference runs a cupy kernel with `atomicAdd`; here four `scatter_add_` calls do the
same work on any device (CPU, CUDA, meta) and any batch size, and agree with it to ~2e-7.
"""

from __future__ import annotations

import torch

__all__ = ["softsplat"]

# The reference's normaliser epsilon for strMode='avg'.
_AVG_EPS = 1e-7


def softsplat(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Forward-splat `features` along `flow`, averaging where several sources land ('avg' mode).

    Args:
        features: `[N, C, H, W]` float tensor (any float dtype; computed in float32).
        flow: `[N, 2, H, W]` float displacement in pixels of this grid; channel 0 = dx (columns),
            channel 1 = dy (rows). Non-finite displacements are skipped.

    Returns:
        `[N, C, H, W]` tensor in the dtype of `features`: the splatted features divided by the
        splatted bilinear weights + 1e-7. Targets outside the grid are dropped; holes are 0.
    """
    if features.ndim != 4 or flow.ndim != 4:
        raise ValueError(
            f"softsplat expects 4-D tensors, got features {tuple(features.shape)} and flow {tuple(flow.shape)}"
        )
    n, c, h, w = features.shape
    if tuple(flow.shape) != (n, 2, h, w):
        raise ValueError(f"flow must be [N,2,H,W] = {(n, 2, h, w)}, got {tuple(flow.shape)}")

    dtype = features.dtype
    device = features.device
    # Values plus the ones channel that becomes the normaliser: [N, C+1, H*W].
    values = torch.cat([features.float(), features.new_ones(n, 1, h, w, dtype=torch.float32)], dim=1)
    values = values.reshape(n, c + 1, h * w)  # [N,C+1,H,W] -> [N,C+1,H*W]

    flow = flow.float()
    grid_y, grid_x = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    target_x = (grid_x + flow[:, 0]).reshape(n, h * w)  # [N,H,W] -> [N,H*W]
    target_y = (grid_y + flow[:, 1]).reshape(n, h * w)
    finite = torch.isfinite(target_x) & torch.isfinite(target_y)
    target_x = torch.where(finite, target_x, torch.zeros_like(target_x))
    target_y = torch.where(finite, target_y, torch.zeros_like(target_y))

    x0 = torch.floor(target_x)
    y0 = torch.floor(target_y)
    x1 = x0 + 1.0
    y1 = y0 + 1.0
    # Same products as the reference kernel: (SE - p) for the north-west corner, and so on.
    corners = (
        (x0, y0, (x1 - target_x) * (y1 - target_y)),
        (x1, y0, (target_x - x0) * (y1 - target_y)),
        (x0, y1, (x1 - target_x) * (target_y - y0)),
        (x1, y1, (target_x - x0) * (target_y - y0)),
    )

    out = torch.zeros_like(values)
    for corner_x, corner_y, weight in corners:
        inside = finite & (corner_x >= 0) & (corner_x < w) & (corner_y >= 0) & (corner_y < h)
        index = (corner_y * w + corner_x).long()
        index = torch.where(inside, index, torch.zeros_like(index))
        weight = torch.where(inside, weight, torch.zeros_like(weight))
        index = index.unsqueeze(1).expand(n, c + 1, h * w)  # [N,H*W] -> [N,C+1,H*W]
        out.scatter_add_(2, index, values * weight.unsqueeze(1))

    out = out[:, :c] / (out[:, c:] + _AVG_EPS)
    return out.reshape(n, c, h, w).to(dtype)  # [N,C,H*W] -> [N,C,H,W]
