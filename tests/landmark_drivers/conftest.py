"""Shared landmark_drivers fixtures: the example portrait analysed once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from landmark_drivers import BLENDSHAPE_NAMES, SourceFace

ASSETS = Path(__file__).resolve().parents[2] / "landmark_drivers" / "assets"

# Fallback 478 -> 68 mapping (mesh vertex per iBUG point) used only while `ibug68.py` is missing.
_FALLBACK_IBUG68 = np.array([
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 168, 6, 195, 4, 239, 241, 19, 461, 459,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178])


def _to_ibug68(mesh_xy: np.ndarray) -> np.ndarray:
    try:
        from landmark_drivers.ibug68 import mesh_to_ibug68
    except ImportError:
        return mesh_xy[..., _FALLBACK_IBUG68, :]
    return np.asarray(mesh_to_ibug68(mesh_xy))


def analyse_portrait(rgb: np.ndarray) -> SourceFace:
    """SourceFace of the largest face in an RGB uint8 image [H, W, 3], straight from mediapipe."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(ASSETS / "face_landmarker.task")),
        output_face_blendshapes=True, output_facial_transformation_matrixes=True, num_faces=1)
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
    if not result.face_landmarks:
        raise ValueError("no face found in the test image")
    h, w = rgb.shape[:2]
    mesh = np.array([[p.x * w, p.y * h, p.z * w] for p in result.face_landmarks[0]], np.float32)
    scores = {c.category_name: c.score for c in result.face_blendshapes[0]}
    return SourceFace(
        image_size=(h, w), mesh=mesh, landmarks68=_to_ibug68(mesh[:, :2]).astype(np.float32),
        blendshapes=np.array([scores.get(n, 0.0) for n in BLENDSHAPE_NAMES], np.float32),
        pose=np.asarray(result.facial_transformation_matrixes[0], np.float32), num_faces=1)


@pytest.fixture(scope="session")
def portrait_rgb(portrait_path: Path) -> np.ndarray:
    """The example portrait, uint8 RGB [512, 512, 3]."""
    import cv2

    bgr = cv2.imread(str(portrait_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(portrait_path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def portrait_face(portrait_rgb: np.ndarray) -> SourceFace:
    """SourceFace of the example portrait, analysed once per session with mediapipe directly (so the rig's
    tests do not depend on `FaceAnalyzer`; the 68 points come from `ibug68.mesh_to_ibug68`)."""
    return analyse_portrait(portrait_rgb)
