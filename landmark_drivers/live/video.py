"""The driving-video driver in streaming form: camera frames in, relative face motion out, causally.

Per frame (`StreamingVideoDriver.push`):

1. The frame is downscaled to `max_side` and analysed by mediapipe's FaceLandmarker in VIDEO mode
   (it tracks the face from the previous frame; timestamps must increase).
2. **Reference.** The first frame with a face, or, after `set_neutral()`, the next frame with a face:
   expressions and head pose are taken relative to that one frame (it maps onto the portrait as
   photographed), exactly as the offline driver's `relative_to="first"` does (`retarget.py`).
3. **Relative motion.** Expression deltas times `expressiveness` (limited by the portrait's own weights
   when `source` is given), head rotation and pivot shift times `head_motion`, angles limited to
   +-`MAX_ROTATION_DEG`, scale change to >= `MIN_SCALE_CHANGE`.
4. **Smoothing.** One Euro filters (`one_euro.py`) instead of the offline zero-phase Gaussians: head pose
   is smoothed harder than expressions (lips and blinks stay crisp); `smoothing` divides the cutoffs
   (0 = raw measurements).
5. **Gaps.** A frame without a face holds the last motion (nothing in the future to interpolate to).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..retarget import measure_head, relative_blendshapes, relative_rotation, relative_translation
from ..video_driver import MAX_ROTATION_DEG, MIN_SCALE_CHANGE
from .frames import MotionFrame
from .one_euro import OneEuroFilter

if TYPE_CHECKING:
    from ..face_analysis import FaceAnalyzer
    from ..source_face import SourceFace

logger = logging.getLogger(__name__)

HEAD_FILTER = (1.2, 0.15)  # One Euro (min_cutoff Hz, beta per degree/s) of head pose at smoothing=1
EXPRESSION_FILTER = (4.0, 2.0)  # ... of expression weights (weights/s): lips and blinks stay crisp
DERIVATIVE_CUTOFF = 1.0  # Hz, the filters' speed estimate


@dataclass(frozen=True)
class StreamingVideoOptions:
    """How live camera frames become face motion."""

    smoothing: float = 1.0  # divides the One Euro cutoffs (0 = raw per-frame measurements, <= 5)
    expressiveness: float = 1.0  # scale of the expression deltas (0 = still face, 1 = as driven, <= 3)
    head_motion: float = 1.0  # scale of head rotation/translation (0 = still head, 1 = as driven, <= 3)
    max_side: int = 640  # px: larger frames are downscaled before face analysis (mediapipe works at 256)

    def __post_init__(self) -> None:
        for name, top in (("smoothing", 5.0), ("expressiveness", 3.0), ("head_motion", 3.0)):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0.0 <= value <= top):
                raise ValueError(f"{name} must be within 0..{top}, got {value}")
        if not 64 <= int(self.max_side) <= 4096:
            raise ValueError(f"max_side must be within 64..4096, got {self.max_side}")


@dataclass
class _Reference:
    blendshapes: np.ndarray  # [52]
    axes: np.ndarray  # [3, 3]
    pivot: np.ndarray  # [3]
    unit: float
    scale: float


class StreamingVideoDriver:
    """Relative face motion of a live face, one frame at a time (module docstring). Not thread-safe.

    options: `StreamingVideoOptions` (the scales may be changed later with `with_options`).
    source: the portrait's face; negative expression deltas then stop at the portrait's own weights.
    analyzer: a `FaceAnalyzer` to use (its video tracking is reset here); default: a new one, closed by `close`.
    """

    def __init__(self, options: StreamingVideoOptions | None = None, source: "SourceFace | None" = None,
                 analyzer: "FaceAnalyzer | None" = None) -> None:
        self.options = options or StreamingVideoOptions()
        self._own = analyzer is None
        if analyzer is None:
            from ..face_analysis import FaceAnalyzer

            analyzer = FaceAnalyzer()
        self.analyzer = analyzer
        self.analyzer.reset_video()
        self._source = np.asarray(source.blendshapes, np.float64) if source is not None else None
        self._reference: _Reference | None = None
        self._want_neutral = False
        self._last: MotionFrame | None = None
        self._last_ms: int | None = None
        self._filters()
        self.faces_found = 0  # frames with a face
        self.frames_seen = 0  # frames pushed

    def _filters(self) -> None:
        s = max(self.options.smoothing, 1e-6)
        self._head = OneEuroFilter(HEAD_FILTER[0] / s, HEAD_FILTER[1], DERIVATIVE_CUTOFF)
        self._expr = OneEuroFilter(EXPRESSION_FILTER[0] / s, EXPRESSION_FILTER[1], DERIVATIVE_CUTOFF)

    def with_options(self, options: StreamingVideoOptions) -> None:
        """Change expressiveness/head motion/smoothing from the next frame on (the reference is kept)."""
        smoothing_changed = options.smoothing != self.options.smoothing
        self.options = options
        if smoothing_changed:
            self._filters()

    def set_neutral(self) -> None:
        """Take the next frame with a face as the new reference (the face as it is now = the portrait)."""
        self._want_neutral = True

    def push(self, rgb: np.ndarray, t: float) -> MotionFrame | None:
        """Analyse one frame (uint8 RGB [H, W, 3]) taken at `t` seconds; return the motion at `t`.

        Returns None until the first face is seen; afterwards a frame without a face repeats the last
        motion (with this frame's time). Timestamps must increase.
        """
        self.frames_seen += 1
        h, w = rgb.shape[:2]
        scale = min(1.0, self.options.max_side / max(h, w))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)
        ms = int(round(t * 1000))
        ms = ms if self._last_ms is None or ms > self._last_ms else self._last_ms + 1  # mediapipe: increasing ms
        self._last_ms = ms
        face = self.analyzer.analyze_video_frame(np.ascontiguousarray(rgb), ms)
        if face is None:
            if self._last is None:
                return None
            self._last = MotionFrame(float(t), self._last.blendshapes, self._last.rotation, self._last.translation)
            return self._last
        self.faces_found += 1
        head = measure_head(face.mesh)
        shapes = np.asarray(face.blendshapes, np.float64)
        if self._reference is None or self._want_neutral:
            self._reference = _Reference(shapes, head.axes, head.pivot, head.unit, head.scale)
            self._want_neutral = False
            self._head.reset()
            self._expr.reset()
            logger.info("live driving reference set at %.2f s", t)
        ref, o = self._reference, self.options
        angles = relative_rotation(head.axes[None], ref.axes)[0]
        shift = relative_translation(head.pivot[None], np.array([head.scale]), ref.pivot, ref.unit, ref.scale)[0]
        deltas = shapes - ref.blendshapes
        if o.smoothing > 0:
            pose = self._head(np.concatenate([angles, shift]), t)
            angles, shift = pose[:3], pose[3:]
            deltas = self._expr(deltas, t)
        blendshapes = relative_blendshapes(deltas[None], np.zeros_like(deltas), o.expressiveness, self._source)[0]
        rotation = np.clip(angles * o.head_motion, -MAX_ROTATION_DEG, MAX_ROTATION_DEG)
        translation = shift * o.head_motion
        translation[2] = max(translation[2], MIN_SCALE_CHANGE)
        self._last = MotionFrame(float(t), blendshapes.astype(np.float32), rotation.astype(np.float32),
                                 translation.astype(np.float32))
        return self._last

    def close(self) -> None:
        """Release the analyzer's video graph (and the analyzer itself when this driver made it)."""
        self.analyzer.reset_video()
        if self._own:
            self.analyzer.close()

    def __enter__(self) -> "StreamingVideoDriver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
