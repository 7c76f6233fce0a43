"""Motion -> portrait frame for live mode: directions layered on the driver, face rig, warp engine."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from landmark_drivers import FaceMotion
from landmark_drivers.expressions import ExpressionTrack, apply_expression, expression_from_sliders
from landmark_drivers.live import MotionFrame
from landmark_drivers.rig import FaceRig
from mofa_engine.warp.analytic_flow import AnalyticFlow
from mofa_engine.warp.warp_renderer import WarpRenderer

from ..errors import InputError


@dataclass(frozen=True)
class Direction:
    """What the user layers over the live driver; every change applies from the next frame.

    sliders: pose presets, blendshapes, yaw/pitch/roll, x/y/z (see `expression_from_sliders`), held.
    keyframes: an expression track started at `keyframes_start` (stream seconds): "relative to now".
    """

    head_motion: float = 1.0  # scale of the driver's head motion
    expressiveness: float = 1.0  # scale of the driver's expressions (video) or brows (audio)
    articulation: float = 1.0  # audio: scale of jaw/lip motion
    sliders: Mapping[str, float] = field(default_factory=dict)  # held slider values (added to the driver)
    keyframes: ExpressionTrack | None = None  # keyframes layered from `keyframes_start` on
    keyframes_start: float = 0.0  # stream time (s) of the keyframes' t = 0


class LiveRenderer:
    """Renders one portrait (`portrait.image`, `portrait.face`) from live `MotionFrame`s. Thread-safe
    `direct`; `render` is called from one thread."""

    def __init__(self, portrait) -> None:
        self.image = portrait.image
        self.rig = FaceRig(portrait.face)
        h, w = portrait.image.shape[:2]
        self.flow = AnalyticFlow(self.rig.reference, h, w)
        self.warp = WarpRenderer(portrait.image, self.rig.reference, self.flow)
        self._lock = threading.Lock()
        self._direction = Direction()
        self._slider_track: ExpressionTrack | None = None
        self._last: tuple[bytes, np.ndarray] | None = None  # (pose key, frame): repeated poses are not re-rendered

    @property
    def direction(self) -> Direction:
        with self._lock:
            return self._direction

    def direct(self, direction: Direction) -> None:
        """Replace the direction (validated here: a bad slider raises InputError, nothing changes)."""
        sliders = None
        if direction.sliders:
            try:
                sliders = expression_from_sliders(dict(direction.sliders))
            except ValueError as exc:
                raise InputError(str(exc)) from None
        with self._lock:
            self._direction, self._slider_track = direction, sliders

    def pose(self, motion: MotionFrame, fps: float) -> np.ndarray:
        """float32 [68, 2] landmarks of `motion` with the direction's sliders and keyframes layered."""
        with self._lock:
            direction, sliders = self._direction, self._slider_track
        base = FaceMotion(blendshapes=motion.blendshapes[None].astype(np.float32),
                          rotation=motion.rotation[None].astype(np.float32),
                          translation=motion.translation[None].astype(np.float32), fps=fps)
        if direction.keyframes is not None:
            base = apply_expression(base, direction.keyframes, start=max(0.0, motion.t - direction.keyframes_start))
        if sliders is not None:
            base = apply_expression(base, sliders)
        return self.rig.deform(base.blendshapes, base.rotation, base.translation)[0]

    def render(self, points: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] RGB frame of the portrait at landmarks `points` [68, 2]."""
        key = np.round(points, 3).tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        frame = self.warp.render(points)
        frame.setflags(write=False)
        self._last = (key, frame)
        return frame
