"""The head region of a portrait (face, hair, neck) from its 68 iBUG landmarks.

The face is the convex hull of the jaw line and the brows; the hair is the upper half of an ellipse
over the brows reaching `hair_height` face heights above them; the neck is a trapezoid under the chin
that widens toward the shoulders. All shapes are laid out in the face's own frame (x along the eye
line, y toward the chin), so a rolled head gets a rolled region.

Uses: the warp engine's falloff (what moves with the head, `analytic_flow.py`) and MOFA's default
landmark mask (`threshold=0.5` gives a binary mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

JAW = slice(0, 17)
BROWS = slice(17, 27)
RIGHT_EYE = slice(36, 42)  # the subject's right eye, on the image's left
LEFT_EYE = slice(42, 48)
CHIN = 8


@dataclass(frozen=True)
class FaceFrame:
    """A face's own axes in image pixels (from 68 landmarks)."""

    brow_center: np.ndarray  # float64 [2] mean of the brow points
    chin: np.ndarray  # float64 [2] landmark 8
    across: np.ndarray  # float64 [2] unit vector along the eye line (image right on an upright face)
    down: np.ndarray  # float64 [2] unit vector toward the chin, perpendicular to `across`
    height: float  # brow center to chin along `down`, pixels
    width: float  # jaw 0 to jaw 16 along `across`, pixels

    def to_image(self, origin: np.ndarray, coords: np.ndarray) -> np.ndarray:
        """Points given as (across, down) offsets from `origin` -> image (x, y). coords `[N, 2]`."""
        return origin[None] + coords[:, :1] * self.across[None] + coords[:, 1:] * self.down[None]


def _check_landmarks(landmarks68: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"landmarks68 must have shape [68, 2], got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("landmarks68 contain non-finite values")
    return pts


def face_frame(landmarks68: np.ndarray) -> FaceFrame:
    """The face's axes and size from `[68, 2]` (x, y) pixel landmarks (iBUG order)."""
    pts = _check_landmarks(landmarks68)
    across = pts[LEFT_EYE].mean(0) - pts[RIGHT_EYE].mean(0)
    norm = float(np.linalg.norm(across))
    if norm < 1e-6:
        raise ValueError("landmarks68 are degenerate: both eye centres coincide")
    across = across / norm
    down = np.array([-across[1], across[0]])
    brow_center = pts[BROWS].mean(0)
    chin = pts[CHIN]
    height = float((chin - brow_center) @ down)
    width = float(abs((pts[16] - pts[0]) @ across))
    if height <= 1e-6 or width <= 1e-6:
        raise ValueError(f"landmarks68 are degenerate: face height {height:.3g}, width {width:.3g} px")
    return FaceFrame(brow_center, chin, across, down, height, width)


def head_polygon(landmarks68: np.ndarray, include_hair: bool = True, hair_height: float = 0.75,
                 hair_width: float = 0.62, num_arc: int = 24) -> np.ndarray:
    """Convex outline of face (+ hair) as float64 `[N, 2]` (x, y) pixels.

    hair_height: how far the hair reaches above the brows, in face heights (brow to chin).
    hair_width: half width of the hair ellipse, in face widths (jaw 0 to 16).
    """
    pts = _check_landmarks(landmarks68)
    frame = face_frame(pts)
    cloud = [pts[JAW], pts[BROWS]]
    if include_hair:
        angles = np.linspace(np.pi, 2 * np.pi, num_arc)  # upper half: down-coordinate <= 0
        arc = np.stack([hair_width * frame.width * np.cos(angles),
                        hair_height * frame.height * np.sin(angles)], axis=1)
        cloud.append(frame.to_image(frame.brow_center, arc))
    cloud = np.concatenate(cloud).astype(np.float32)
    return cv2.convexHull(cloud)[:, 0, :].astype(np.float64)


def neck_polygon(landmarks68: np.ndarray, neck_length: float = 0.6, top_width: float = 0.32,
                 bottom_width: float = 0.42) -> np.ndarray:
    """Trapezoid under the chin as float64 `[4, 2]` (x, y) pixels.

    It starts 0.3 face heights above the chin (inside the face, so the shapes overlap), ends
    `neck_length` face heights below it; half widths in face widths.
    """
    frame = face_frame(landmarks68)
    w, h = frame.width, frame.height
    quad = np.array([[-top_width * w, -0.3 * h], [top_width * w, -0.3 * h],
                     [bottom_width * w, neck_length * h], [-bottom_width * w, neck_length * h]])
    return frame.to_image(frame.chin, quad)


def _fill(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    canvas = np.zeros((height, width), dtype=np.uint8)
    shift = 4  # sub-pixel vertices: 1/16 px
    for poly in polygons:
        cv2.fillPoly(canvas, [np.round(poly * (1 << shift)).astype(np.int32)], 1, cv2.LINE_8, shift)
    return canvas.astype(np.float32)


def face_region_mask(
    landmarks68: np.ndarray,
    height: int,
    width: int,
    include_hair: bool = True,
    include_neck: bool = True,
    feather: float | None = None,
    threshold: float | None = None,
) -> np.ndarray:
    """Soft mask of the face (+ forehead/hair, + neck) of a portrait.

    landmarks68: float `[68, 2]` (x, y) pixels, iBUG order, of a `height x width` image.
    feather: Gaussian blur sigma in pixels; None = 4% of the face height; 0 = hard edges.
    threshold: when given, return `(mask >= threshold)` as 0/1 float32 (e.g. 0.5 for MOFA's
        landmark mask).
    Returns float32 `[height, width]` in [0, 1].
    """
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    frame = face_frame(landmarks68)
    polygons = [head_polygon(landmarks68, include_hair=include_hair)]
    if include_neck:
        polygons.append(neck_polygon(landmarks68))
    mask = _fill(polygons, height, width)
    sigma = 0.04 * frame.height if feather is None else float(feather)
    if sigma < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    if sigma > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    mask = np.clip(mask, 0.0, 1.0)
    if threshold is not None:
        mask = (mask >= threshold).astype(np.float32)
    return mask
