"""`MotionFrame`: one instant of `FaceMotion`, as live drivers emit it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..motion import FaceMotion


@dataclass(frozen=True)
class MotionFrame:
    """The face at one instant, relative to the portrait (`FaceMotion`'s conventions).

    t: seconds on the input's timeline (video: the frame's timestamp; audio: the output frame's start).
    blendshapes: float32 [52] ARKit weights added to the portrait's own expression (deltas may be < 0
        for video driving, as `FaceMotion` from `drive_from_video`).
    rotation: float32 [3] (yaw, pitch, roll) degrees. translation: float32 [3] (x, y, z).
    """

    t: float
    blendshapes: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def still(cls, t: float) -> "MotionFrame":
        """The portrait as photographed at time `t`."""
        return cls(float(t), np.zeros(52, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32))


def frames_to_motion(frames: Sequence[MotionFrame], fps: float) -> FaceMotion:
    """Stack frames (one per output frame, in order) into a `FaceMotion` at `fps`."""
    if not frames:
        return FaceMotion.still(0, fps)
    return FaceMotion(blendshapes=np.stack([f.blendshapes for f in frames]).astype(np.float32),
                      rotation=np.stack([f.rotation for f in frames]).astype(np.float32),
                      translation=np.stack([f.translation for f in frames]).astype(np.float32), fps=float(fps))
