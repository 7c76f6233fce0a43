"""Camera moves (paper §4.1): named whole-frame motion patterns, for both engines.

A camera move is a similarity of the whole frame about its centre that grows from the identity at
frame 0 to its full amount at the last frame (eased in and out). Names follow the camera, as a film
crew says them; what the picture does:

* `zoom-in` / `zoom-out`: the picture grows / shrinks by the factor `1 + amount` (default 0.15);
* `pan-left` / `pan-right`: the camera turns left / right, so the picture slides right / left by
  `amount` of the frame width (default 0.1);
* `pan-up` / `pan-down`: the camera tilts up / down, so the picture slides down / up by `amount` of
  the frame height (default 0.1);
* `rotate-cw` / `rotate-ccw`: the picture turns clockwise / counter-clockwise on screen by `amount`
  degrees (default 5).

The same move is handed to each engine in the form it reads: a dense forward flow and backward
sampling maps (warp engine: composed after the face's own motion), moved landmarks, and drags over a
grid of the frame (MOFA engine: Eq. 4 trajectory hints that CMP densifies). Coordinates are pixels,
x = column, y = row; the centre of the frame is `((W - 1) / 2, (H - 1) / 2)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

CameraName = Literal["zoom-in", "zoom-out", "pan-left", "pan-right", "pan-up", "pan-down", "rotate-cw", "rotate-ccw"]
CAMERA_NAMES: tuple[str, ...] = get_args(CameraName)
# per kind: (default amount, largest amount, unit shown to the user)
_KINDS = {"zoom": (0.15, 1.0, "scale change"), "pan": (0.1, 0.5, "of the frame side"), "rotate": (5.0, 45.0, "degrees")}


def _smoothstep(z: float) -> float:
    z = min(max(z, 0.0), 1.0)
    return z * z * (3.0 - 2.0 * z)


@dataclass(frozen=True)
class CameraMove:
    """One named camera move over a clip (see the module docstring for names and amounts)."""

    name: CameraName  # which move
    amount: float | None = None  # its size at the last frame; None = the move's default

    def __post_init__(self) -> None:
        if self.name not in CAMERA_NAMES:
            raise ValueError(f"camera move must be one of {', '.join(CAMERA_NAMES)}, got {str(self.name)[:40]!r}")
        default, largest, unit = _KINDS[self.kind]
        if self.amount is None:
            object.__setattr__(self, "amount", default)
        amount = self.amount
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or not math.isfinite(amount) \
                or not 0 < amount <= largest:
            raise ValueError(f"the {self.name} amount must be in (0, {largest:g}] ({unit}), got {amount!r}")
        object.__setattr__(self, "amount", float(amount))

    @classmethod
    def parse(cls, spec: str) -> CameraMove:
        """`NAME` or `NAME:AMOUNT` (e.g. `zoom-in`, `pan-left:0.2`, `rotate-cw:10`). Raises ValueError."""
        name, sep, amount = str(spec).strip().partition(":")
        if not sep:
            return cls(name)  # type: ignore[arg-type]
        try:
            value = float(amount)
        except ValueError:
            raise ValueError(f"camera amount must be a number, got {amount[:40]!r}") from None
        return cls(name, value)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.name}:{self.amount:g}"

    @property
    def kind(self) -> str:
        """"zoom", "pan" or "rotate"."""
        return self.name.split("-")[0]

    # ------------------------------------------------------------------ the transform
    @staticmethod
    def progress(frame_index: int, num_frames: int) -> float:
        """How far the move has gone at `frame_index` of a `num_frames` clip: 0 at the first frame,
        1 at the last, eased in and out (smoothstep)."""
        if num_frames < 2:
            return 0.0
        return _smoothstep(frame_index / (num_frames - 1))

    def matrix(self, frac: float, height: int, width: int) -> np.ndarray:
        """float64 `[2, 3]` affine map of frame pixels at progress `frac` (0..1): where the picture's
        point x goes, `A @ [x, y, 1]`."""
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        scale, angle, shift = 1.0, 0.0, np.zeros(2)
        if self.name == "zoom-in":
            scale = 1.0 + frac * self.amount
        elif self.name == "zoom-out":
            scale = 1.0 / (1.0 + frac * self.amount)
        elif self.kind == "pan":
            sign = {"pan-left": (1, 0), "pan-right": (-1, 0), "pan-up": (0, 1), "pan-down": (0, -1)}[self.name]
            shift = frac * self.amount * np.array([sign[0] * width, sign[1] * height], dtype=np.float64)
        else:  # y points down, so a positive angle turns the picture clockwise on screen
            angle = math.radians(frac * self.amount) * (1 if self.name == "rotate-cw" else -1)
        c, s = scale * math.cos(angle), scale * math.sin(angle)
        linear = np.array([[c, -s], [s, c]])
        centre = np.array([cx, cy])
        return np.concatenate([linear, (centre - linear @ centre + shift)[:, None]], axis=1)

    def apply(self, points: np.ndarray, frac: float, height: int, width: int) -> np.ndarray:
        """Points `[..., 2]` (x, y pixels) moved by the camera at progress `frac`; float64, same shape."""
        a = self.matrix(frac, height, width)
        pts = np.asarray(points, dtype=np.float64)
        return pts @ a[:, :2].T + a[:, 2]

    def flow(self, frac: float, height: int, width: int) -> np.ndarray:
        """Forward flow of the whole frame at progress `frac`: float32 `[2, H, W]` (dx, dy pixels)."""
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        grid = np.stack([xs, ys], -1)  # [H, W, 2]
        return (self.apply(grid, frac, height, width) - grid).transpose(2, 0, 1).astype(np.float32)

    def compose_flow(self, flow: np.ndarray, frac: float) -> np.ndarray:
        """The camera after a forward flow: x -> C(x + flow(x)) - x. flow: float `[2, H, W]` -> float32."""
        _, height, width = flow.shape
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        moved = np.stack([xs + flow[0], ys + flow[1]], -1)  # [2,H,W] -> [H,W,2] positions
        return (self.apply(moved, frac, height, width) - np.stack([xs, ys], -1)).transpose(2, 0, 1).astype(np.float32)

    def backward_map(self, frac: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 `(map_x, map_y)` `[H, W]`: the picture pixel each output pixel shows, C^-1(y)."""
        inverse = cv2.invertAffineTransform(self.matrix(frac, height, width))
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        map_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        map_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
        return map_x.astype(np.float32), map_y.astype(np.float32)

    def compose_maps(self, map_x: np.ndarray, map_y: np.ndarray, frac: float) -> tuple[np.ndarray, np.ndarray]:
        """Backward maps of the camera after a warp: y -> B(C^-1(y)), float32 `[H, W]` each.

        map_x, map_y: float32 `[H, W]` sampling maps of the warp (`cv2.remap` convention). Outside the
        frame the warp's edge is repeated, as `cv2.remap` with BORDER_REPLICATE would show it.
        """
        height, width = map_x.shape
        cx, cy = self.backward_map(frac, height, width)
        fused = np.ascontiguousarray(np.stack([map_x, map_y], -1), dtype=np.float32)
        out = cv2.remap(fused, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(out[..., 0]), np.ascontiguousarray(out[..., 1])

    def drags(self, num_frames: int, height: int, width: int, grid: int = 8, length: int | None = None
              ) -> list[np.ndarray]:
        """The move as drags for trajectory hints: float64 `[length, 2]` paths of a `grid x grid`
        lattice of frame points (cell centres), point t = where the point is at frame t of a
        `num_frames` clip; `length` (>= num_frames, default num_frames) pads with the end point.

        Only points whose whole path stays inside the frame are kept (trajectory points must lie in
        the image); a zoom-in keeps the inner ones, a pan drops the column or row it pushes out.
        """
        length = num_frames if length is None else length
        if num_frames < 1 or grid < 1 or length < num_frames:
            raise ValueError(f"need num_frames, grid >= 1 and length >= num_frames, got {num_frames}, {grid}, {length}")
        ticks = lambda n: (np.arange(grid) + 0.5) * n / grid
        gx, gy = np.meshgrid(ticks(width), ticks(height))
        starts = np.stack([gx.ravel(), gy.ravel()], 1)  # [G, 2]
        paths = np.stack([self.apply(starts, self.progress(min(t, num_frames - 1), num_frames), height, width)
                          for t in range(length)], axis=1)  # [G, length, 2]
        inside = ((paths[..., 0] >= 0) & (paths[..., 0] < width) & (paths[..., 1] >= 0)
                  & (paths[..., 1] < height)).all(axis=1)
        return [p for p in paths[inside]]


def parse_camera(spec: str | None) -> CameraMove | None:
    """`CameraMove.parse` that passes None (no camera move) through."""
    return None if spec is None or str(spec).strip() == "" else CameraMove.parse(spec)
