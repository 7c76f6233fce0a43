"""`EvaluateOptions`: what `evaluate` compares a video with, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .fileinfo import Limits


@dataclass(frozen=True)
class EvaluateOptions:
    """What `evaluate_video` measures against."""

    audio: Path | None = None  # speech to compare the mouth with; None = the video's own audio track
    landmarks: Path | None = None  # the asked-for landmark track (.npz, output-frame pixels) -> control accuracy
    driving_video: Path | None = None  # the asked-for motion as a driving video (needs `image`) -> control
    image: Path | None = None  # the source portrait -> face geometry drift (and retargeting a driving video)
    window_s: float = 5.0  # drift window length, seconds
    limits: Limits = field(default_factory=Limits)  # bounds checked before decoding

    def __post_init__(self) -> None:
        if not (np.isfinite(self.window_s) and 0.2 <= self.window_s <= 600):
            raise InputError(f"--window must be within 0.2..600 seconds, got {self.window_s:g}")
        if self.landmarks is not None and self.driving_video is not None:
            raise InputError("give the asked-for motion once: --landmarks or --driving-video, not both")
        if self.driving_video is not None and self.image is None:
            raise InputError("--driving-video needs --image (the motion is retargeted onto that portrait)")
