"""Options of a live session: one frozen dataclass, validated in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..errors import InputError
from ..options import OptionSpec, _opt, _specs_of

LiveDriver = Literal["video", "audio"]


LIVE = ("live",)  # the `live` command's scope in the options metadata (flags derived from these fields)


@dataclass(frozen=True)
class LiveOptions:
    """How a live session turns a camera or a microphone into portrait frames."""

    driver: LiveDriver = "video"  # what drives the face: camera frames ("video") or speech ("audio")
    fps: float = _opt(25.0, "output frame rate (1..60)", scope=LIVE)
    size: int = _opt(512, "short side of the frames in pixels", scope=LIVE)
    seed: int = _opt(0, "seeds the audio driver's blinks and head sway", scope=LIVE)
    head_motion: float = _opt(1.0, "scale of head rotation/translation, 0 = still head (0..3)", scope=LIVE)
    expressiveness: float = _opt(1.0, "video: scale of expressions; audio: brow raises (0..3)", scope=LIVE)
    articulation: float = _opt(1.0, "audio: scale of jaw and lip motion, 0 = closed mouth (0..2)", scope=LIVE)
    smoothing: float = _opt(1.0, "video: strength of the causal (One Euro) smoothing, 0 = raw (0..5)", scope=LIVE)
    sample_rate: int = 16000  # audio: Hz of the pushed samples
    drop_late: bool = True  # skip frames over `max_lag_frames` late (counted); False: never drop, wait
    max_lag_frames: float = 1.0  # how far behind real time a frame may be before it is skipped

    def validate(self) -> "LiveOptions":
        """Raise InputError naming the first invalid value; return self."""
        _check(self.driver in ("video", "audio"), f"live driver must be video or audio, got {self.driver!r}")
        _check(_finite(self.fps) and 1 <= self.fps <= 60, f"--fps must be between 1 and 60, got {self.fps}")
        _check(isinstance(self.size, int) and 64 <= self.size <= 2048,
               f"--size must be between 64 and 2048 pixels, got {self.size}")
        _check(isinstance(self.seed, int) and self.seed >= 0, f"--seed must be a non-negative integer, got {self.seed}")
        for name, value, top in (("--head-motion", self.head_motion, 3.0), ("--expressiveness", self.expressiveness, 3.0),
                                 ("--articulation", self.articulation, 2.0), ("--smoothing", self.smoothing, 5.0)):
            _check(_finite(value) and 0 <= value <= top, f"{name} must be between 0 and {top:g}, got {value}")
        _check(isinstance(self.sample_rate, int) and 8000 <= self.sample_rate <= 192000,
               f"sample rate must be between 8000 and 192000 Hz, got {self.sample_rate}")
        _check(_finite(self.max_lag_frames) and self.max_lag_frames >= 0,
               f"max_lag_frames must be >= 0, got {self.max_lag_frames}")
        return self


def live_option_specs() -> list[OptionSpec]:
    """The user-facing options of the `live` command (their CLI flags are derived from these)."""
    return _specs_of(LiveOptions)


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)
