"""Visualisations of motion: optical flow as colour, landmarks drawn on frames."""

from __future__ import annotations

import cv2
import numpy as np


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-wheel picture of a flow field.

    flow: float [2, H, W] (dx, dy) in pixels. Hue = direction, saturation = magnitude relative to
    `max_magnitude` (default: the field's own maximum). Returns uint8 [H, W, 3] RGB; zero flow is white.
    """
    dx, dy = flow[0].astype(np.float32), flow[1].astype(np.float32)
    magnitude, angle = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    scale = max_magnitude if max_magnitude else float(magnitude.max()) or 1.0
    hsv = np.empty(dx.shape + (3,), np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)  # OpenCV hue is 0..179
    hsv[..., 1] = np.clip(magnitude / scale * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def draw_landmarks(frame: np.ndarray, points: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Copy of `frame` (uint8 [H, W, 3]) with 68 points (float [68, 2], x/y pixels) drawn as dots.

    With `reference`, the reference points are drawn too (grey) joined to the current ones.
    """
    out = frame.copy()
    radius = max(1, round(min(frame.shape[:2]) / 256))
    if reference is not None:
        for (x0, y0), (x1, y1) in zip(reference, points, strict=True):
            cv2.line(out, (int(x0), int(y0)), (int(x1), int(y1)), (160, 160, 160), 1, cv2.LINE_AA)
    for x, y in points:
        cv2.circle(out, (int(round(x)), int(round(y))), radius, (0, 255, 0), -1, cv2.LINE_AA)
    return out
