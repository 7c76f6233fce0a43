"""Causal drivers for live mode: the same `FaceMotion` contract as the offline drivers, filled as the
signal arrives (no future samples beyond a small, stated lookahead).

- `StreamingVideoDriver`: camera frames -> relative face motion (mediapipe in VIDEO mode, motion
  relative to the first face or to a "set neutral" moment, One Euro smoothing).
- `StreamingAudioDriver`: audio chunks -> face motion per video frame (the acoustic mouth on a
  lookahead of `AUDIO_LOOKAHEAD_S`, online seeded blinks, head sway, nods and brows).

Both emit `MotionFrame`s; `frames_to_motion` stacks them into a `FaceMotion`.
"""

from .frames import MotionFrame, frames_to_motion
from .one_euro import OneEuroFilter

__all__ = ["MotionFrame", "frames_to_motion", "OneEuroFilter"]

from .video import StreamingVideoDriver, StreamingVideoOptions  # noqa: E402
from .audio import AUDIO_LOOKAHEAD_S, StreamingAudioDriver, StreamingAudioOptions  # noqa: E402

__all__ += ["StreamingVideoDriver", "StreamingVideoOptions", "StreamingAudioDriver", "StreamingAudioOptions",
            "AUDIO_LOOKAHEAD_S"]
