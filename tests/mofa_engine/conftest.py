"""Fixtures for the engine tests: the example portrait and its 68 iBUG landmarks.

The landmarks come from mediapipe once and are cached under `.cache/` (git-ignored); the engine
itself never imports `landmark_drivers`, but its tests may use it to build realistic inputs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "portrait_landmarks68.npy"
FACE_MODEL = ROOT / "landmark_drivers" / "assets" / "face_landmarker.task"

# mediapipe face-mesh vertex for each iBUG-68 point (AniPortrait's table); used only when
# `landmark_drivers.ibug68` is not importable.
_MESH_TO_IBUG68 = [
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 168, 6, 195, 4, 239, 241, 19, 461, 459,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178,
]


def _detect_landmarks68(rgb: np.ndarray) -> np.ndarray:
    """Run mediapipe's FaceLandmarker on `rgb` (uint8 [H,W,3]); return float32 [68,2] pixels."""
    mp = pytest.importorskip("mediapipe")
    from mediapipe.tasks.python import BaseOptions, vision

    if not FACE_MODEL.is_file():
        pytest.skip(f"face model missing: {FACE_MODEL}")
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(FACE_MODEL)), num_faces=1
    )
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    if not result.face_landmarks:
        pytest.skip("no face found in the example portrait")
    height, width = rgb.shape[:2]
    mesh = np.array([[p.x * width, p.y * height] for p in result.face_landmarks[0]], np.float32)
    try:
        from landmark_drivers.ibug68 import mesh_to_ibug68
    except ImportError:
        return mesh[_MESH_TO_IBUG68].astype(np.float32)
    return np.asarray(mesh_to_ibug68(mesh), np.float32)[:, :2]


@pytest.fixture(scope="session")
def portrait_rgb(portrait_path: Path) -> np.ndarray:
    """The example portrait, uint8 [512,512,3] RGB."""
    bgr = cv2.imread(str(portrait_path), cv2.IMREAD_COLOR)
    if bgr is None:
        pytest.skip(f"cannot read {portrait_path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def portrait_landmarks(portrait_rgb: np.ndarray) -> np.ndarray:
    """The portrait's 68 iBUG landmarks, float32 [68,2] pixels (x = column, y = row)."""
    if CACHE.is_file():
        return np.load(CACHE).astype(np.float32)
    points = _detect_landmarks68(portrait_rgb)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.save(CACHE, points)
    return points


@pytest.fixture(scope="session")
def analytic_flow(portrait_rgb: np.ndarray, portrait_landmarks: np.ndarray):
    """The example portrait's `AnalyticFlow` (built once per session)."""
    from mofa_engine.warp.analytic_flow import AnalyticFlow

    height, width = portrait_rgb.shape[:2]
    return AnalyticFlow(portrait_landmarks, height, width)
