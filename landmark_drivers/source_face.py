"""`SourceFace`: what face analysis knows about the portrait's face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourceFace:
    """The animated face of a portrait (the largest one found).

    image_size: (height, width) of the analysed image in pixels.
    mesh: float32 [478, 3]; mediapipe face-mesh landmarks in pixels: x = column, y = row, and z = depth
        in the same pixel units (mediapipe's normalised z times the image width; smaller = closer to
        the camera, roughly zero-mean over the face).
    landmarks68: float32 [68, 2]; the 68-point iBUG layout in pixels (x, y), see `ibug68.py`.
    blendshapes: float32 [52]; the portrait's own ARKit weights (order `BLENDSHAPE_NAMES`).
    pose: float32 [4, 4]; mediapipe's facial transformation matrix (canonical face -> camera, cm).
    num_faces: how many faces the image holds (this one is the largest).
    """

    image_size: tuple[int, int]
    mesh: np.ndarray
    landmarks68: np.ndarray
    blendshapes: np.ndarray
    pose: np.ndarray
    num_faces: int = 1

    @property
    def interocular(self) -> float:
        """Outer-eye-corner distance (iBUG 36 to 45) in pixels: the face's unit length."""
        return float(np.linalg.norm(self.landmarks68[45] - self.landmarks68[36]))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the face mesh in pixels."""
        x0, y0 = self.mesh[:, :2].min(axis=0)
        x1, y1 = self.mesh[:, :2].max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)
