"""Pose images: the 68-point face skeleton the landmark adapter sees (MOFA-Video, spec section 2.2).

Each frame's landmarks are rescaled to a 320x320 canvas (the training crop size, which keeps the
2-pixel line width meaningful), drawn as coloured polylines with `cv2.line` (thickness 2, LINE_8,
integer-truncated endpoints, colour element i -> channel i, later parts overwrite earlier ones),
resized bilinearly to the image size and divided by 255.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["POSE_PARTS", "draw_pose_images"]

CANVAS_SIZE = 320

# (part, 1-based iBUG-68 indices drawn as a polyline, colour), in drawing order.
POSE_PARTS: tuple[tuple[str, tuple[int, ...], tuple[int, int, int]], ...] = (
    ("FACE", tuple(range(1, 18)), (10, 200, 10)),
    ("LEFT_EYE", (43, 44, 45, 46, 47, 48, 43), (180, 200, 10)),
    ("LEFT_EYEBROW", (23, 24, 25, 26, 27), (180, 220, 10)),
    ("RIGHT_EYE", (37, 38, 39, 40, 41, 42, 37), (10, 200, 180)),
    ("RIGHT_EYEBROW", (18, 19, 20, 21, 22), (10, 220, 180)),
    ("NOSE_UP", (28, 29, 30, 31), (10, 200, 250)),
    ("NOSE_DOWN", (32, 33, 34, 35, 36), (250, 200, 10)),
    ("LIPS_OUTER_BOTTOM_LEFT", (55, 56, 57, 58), (10, 180, 20)),
    ("LIPS_OUTER_BOTTOM_RIGHT", (49, 60, 59, 58), (20, 10, 180)),
    ("LIPS_INNER_BOTTOM_LEFT", (65, 66, 67), (100, 100, 30)),
    ("LIPS_INNER_BOTTOM_RIGHT", (61, 68, 67), (100, 150, 50)),
    ("LIPS_OUTER_TOP_LEFT", (52, 53, 54, 55), (20, 80, 100)),
    ("LIPS_OUTER_TOP_RIGHT", (52, 51, 50, 49), (80, 100, 20)),
    ("LIPS_INNER_TOP_LEFT", (63, 64, 65), (120, 100, 200)),
    ("LIPS_INNER_TOP_RIGHT", (63, 62, 61), (150, 120, 100)),
)


def _draw_skeleton(points: np.ndarray) -> np.ndarray:
    """Draw one frame's skeleton; `points` `[68, 2]` float in canvas pixels -> float64 `[320, 320, 3]`."""
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 3), dtype=np.float64)
    for _, indices, colour in POSE_PARTS:
        for start, end in zip(indices[:-1], indices[1:], strict=True):
            p0 = (int(points[start - 1, 0]), int(points[start - 1, 1]))
            p1 = (int(points[end - 1, 0]), int(points[end - 1, 1]))
            cv2.line(canvas, p0, p1, colour, thickness=2, lineType=cv2.LINE_8)
    return canvas


def draw_pose_images(landmarks: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Render the landmark adapter's pose images.

    Args:
        landmarks: `[T, 68, 2]` float pixel coordinates (x = column, y = row) in the `width` x
            `height` source image, iBUG-68 order; frame 0 is the source face itself.
        height: image height H in pixels.
        width: image width W in pixels.

    Returns:
        float32 `[T, 3, H, W]` in [0, 1] (not normalised to [-1, 1]); add a batch axis for the adapter.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be [T, 68, 2], got {points.shape}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    scaled = np.empty_like(points)  # pixels -> canvas pixels, in the reference's operation order
    scaled[..., 0] = points[..., 0] / width * CANVAS_SIZE
    scaled[..., 1] = points[..., 1] / height * CANVAS_SIZE
    frames = [
        cv2.resize(_draw_skeleton(frame), (width, height), interpolation=cv2.INTER_LINEAR) for frame in scaled
    ]
    images = (np.stack(frames) / 255.0).astype(np.float32)  # [T, H, W, 3]
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # [T,H,W,3] -> [T,3,H,W]
