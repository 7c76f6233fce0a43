"""Raster helpers of the warp engine: pixel boxes, anti-aliased polygon masks, ramps, bilinear samples."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # fillPoly fixed-point precision for anti-aliased masks


class Box(NamedTuple):
    """Pixel rectangle [x0, x1) x [y0, y1) inside an image."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (x, y) of the box, float32 [h, w] each (cv2's convention)."""
        xs = np.arange(self.x0, self.x1, dtype=np.float32)
        ys = np.arange(self.y0, self.y1, dtype=np.float32)
        return np.meshgrid(xs, ys)


class MapWindow:
    """A backward map (output pixel -> portrait pixel, cv2.remap's convention) known on a pixel box and
    the identity elsewhere: what the flow computes per frame, without a whole-image map.

    map_x, map_y: float32 `[h, w]` on the pixels from (x0, y0) on.
    """

    def __init__(self, map_x: np.ndarray, map_y: np.ndarray, x0: int = 0, y0: int = 0) -> None:
        self.map_x, self.map_y, self.x0, self.y0 = map_x, map_y, int(x0), int(y0)

    @classmethod
    def fused(cls, local: np.ndarray, box: tuple[int, int, int, int]) -> "MapWindow":
        """From a float32 `[h, w, 2]` map on `box` (x0, y0, x1, y1)."""
        return cls(local[..., 0], local[..., 1], box[0], box[1])

    def crop(self, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) over `box`, float32 `[h, w]` each (views when the box lies inside the known part)."""
        h, w = self.map_x.shape
        a0, b0, a1, b1 = box.x0 - self.x0, box.y0 - self.y0, box.x1 - self.x0, box.y1 - self.y0
        if a0 >= 0 and b0 >= 0 and a1 <= w and b1 <= h:
            return self.map_x[b0:b1, a0:a1], self.map_y[b0:b1, a0:a1]
        mx, my = box.grid()  # the identity, with the known part pasted in
        c0, d0, c1, d1 = max(a0, 0), max(b0, 0), min(a1, w), min(b1, h)
        if c0 < c1 and d0 < d1:
            mx[d0 - b0:d1 - b0, c0 - a0:c1 - a0] = self.map_x[d0:d1, c0:c1]
            my[d0 - b0:d1 - b0, c0 - a0:c1 - a0] = self.map_y[d0:d1, c0:c1]
        return mx, my


def box_around(points: np.ndarray, pad: float, height: int, width: int) -> Box:
    """The bounding box of `points` ([N, 2] x, y) grown by `pad` pixels, clipped to the image."""
    lo = np.floor(points.min(axis=0) - pad).astype(int)
    hi = np.ceil(points.max(axis=0) + pad).astype(int) + 1
    return Box(max(lo[0], 0), max(lo[1], 0), min(hi[0], width), min(hi[1], height))


def polygon_alpha(polygon: np.ndarray, box: Box) -> np.ndarray:
    """Anti-aliased coverage of `polygon` ([N, 2] image x, y) over `box`: float32 [h, w] in [0, 1]."""
    mask = np.zeros((box.y1 - box.y0, box.x1 - box.x0), np.uint8)
    local = (polygon - np.array([box.x0, box.y0], np.float32)) * (1 << _SUBPIXEL_BITS)
    cv2.fillPoly(mask, [np.round(local).astype(np.int32)], 255, cv2.LINE_AA, _SUBPIXEL_BITS)
    return mask.astype(np.float32) * (1.0 / 255.0)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite ramp from 0 at `edge0` to 1 at `edge1` (elementwise)."""
    u = np.minimum(np.maximum((x - edge0) / (edge1 - edge0), 0.0), 1.0)  # np.clip is slower on small arrays
    return u * u * (3.0 - 2.0 * u)


def sample_bilinear(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of float32 `image [H, W]` or `[H, W, C]` at (x, y) `points [G, 2]` -> `[G, C]`.

    Pixel centres at integer coordinates, edges replicated (cv2.remap).
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    n, cols = len(points), 256  # cv2.remap wants maps under 32767 rows: lay points out in rows of 256
    if n == 0:
        return np.zeros((0, channels), image.dtype)
    pts = np.zeros((-(-n // cols) * cols, 2), np.float32)
    pts[:n] = points
    pts = pts.reshape(-1, cols, 2)
    out = cv2.remap(image, pts[..., 0], pts[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, channels)[:n]
