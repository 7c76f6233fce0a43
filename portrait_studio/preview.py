"""Pictures the studio shows before a render: the faces found, the voice's waveform, the direction's flow.

All of them are computed here (the UI only displays them) from the same code the render runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from landmark_drivers import SourceFace
from landmark_drivers.face_analysis import FaceAnalyzer, FaceModelMissingError, faces_left_to_right
from mofa_engine import AnalyticFlow, CameraMove, flow_to_rgb

from . import media
from .controls import load_mask
from .errors import InputError
from .portrait import Framing, load_portrait

PREVIEW_SIDE = 384  # px: short side of the pictures the previews are computed on


@dataclass(frozen=True)
class FoundFaces:
    """The faces of a photo, numbered left to right (1 = leftmost), and the one animated by default."""

    photo: np.ndarray  # uint8 [H, W, 3] RGB, the photo as loaded (EXIF-rotated)
    faces: list[SourceFace]  # left to right, in photo pixels
    largest: int  # 1-based number of the largest face (the default choice)


def find_faces(image_path: str | Path) -> FoundFaces:
    """Load a photo and find its faces. Raises InputError when it is unreadable or holds no face."""
    photo = load_portrait(image_path)
    try:
        with FaceAnalyzer() as analyzer:
            faces = analyzer.find_faces(photo)
    except FaceModelMissingError as exc:
        raise InputError(str(exc)) from None
    if not faces:
        raise InputError("no face found in the photo; use a photo where one face is clearly visible")
    ordered = faces_left_to_right(faces)
    return FoundFaces(photo, ordered, 1 + ordered.index(faces[0]))


def draw_faces(found: FoundFaces, chosen: int | None = None) -> np.ndarray:
    """The photo with every face's box and number drawn (the chosen one, default the largest, in green
    with its 68 landmarks); uint8 [H, W, 3] RGB."""
    chosen = chosen or found.largest
    out = found.photo.copy()
    side = min(out.shape[:2])
    thick = max(1, round(side / 300))
    for number, face in enumerate(found.faces, start=1):
        x0, y0, x1, y1 = (int(round(v)) for v in face.bbox)
        colour = (40, 220, 60) if number == chosen else (250, 200, 40)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
        cv2.putText(out, str(number), (x0, max(12, y0 - 4 * thick)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.5, side / 700), colour, thick, cv2.LINE_AA)
        if number == chosen:
            for x, y in face.landmarks68:
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, colour, -1, cv2.LINE_AA)
    return out


def waveform(audio_path: str | Path, points: int = 600, max_duration: float | None = None
             ) -> tuple[np.ndarray, np.ndarray, float]:
    """(time [P] s, peak amplitude [P] in [0, 1], duration s) of a speech file, for a plot."""
    samples = media.load_audio(audio_path, sample_rate=8000, max_duration=max_duration)
    duration = len(samples) / 8000.0
    bins = np.array_split(np.abs(samples), min(points, max(1, len(samples))))
    peaks = np.array([b.max() if len(b) else 0.0 for b in bins], dtype=np.float32)
    times = np.linspace(0.0, duration, len(peaks), dtype=np.float32)
    return times, peaks, duration


def direction_flow(image_path: str | Path, landmarks68: np.ndarray | None = None, *,
                   trajectories: list[np.ndarray] | None = None, brush_path: str | Path | None = None,
                   camera: CameraMove | None = None, side: int = PREVIEW_SIDE) -> np.ndarray:
    """Colour-wheel picture (uint8 [h, w, 3] RGB, short side `side`) of where the direction moves each
    pixel by the end of the clip: drags (photo pixels; with the motion brush) through the warp engine's
    drag field, then the camera move. White = still; hue = direction; saturation = distance.

    landmarks68: float [68, 2] photo pixels of the animated face (the drag field is built around it);
    None = the face is found here.
    """
    photo = load_portrait(image_path)
    framing = Framing.fit(*photo.shape[:2], side)
    h, w = framing.size
    if landmarks68 is None:
        landmarks68 = find_faces(image_path).faces[0].landmarks68
    reference = framing.apply_points(np.asarray(landmarks68, np.float64))
    flow = np.zeros((2, h, w), np.float32)
    drags = [framing.apply_points(t) for t in trajectories or []]
    if drags:
        brush = None
        if brush_path is not None:
            src_h, src_w = framing.source_size
            brush = framing.apply_image((load_mask(Path(brush_path), src_h, src_w) * 255).astype(np.uint8)) >= 128
        field = AnalyticFlow(reference, h, w, trajectories=drags, brush=brush, num_frames=2)
        flow = field.forward_flow(reference[None], [1])[0].numpy()
    if camera is not None:
        flow = camera.compose_flow(flow, 1.0)
    magnitude = float(np.linalg.norm(flow, axis=0).max())
    return flow_to_rgb(flow, max_magnitude=max(magnitude, 1.0))
