"""Live mode: the portrait follows a camera or a microphone in real time (warp engine, causal drivers).

`LiveSession` takes timestamped frames or audio chunks and yields timestamped portrait frames;
`sources` read webcams, microphones and files at real-time pace; `sinks` show, stream and record.
"""

from .options import LiveDriver, LiveOptions
from .renderer import Direction
from .session import LiveFrame, LiveSession, LiveStats

from landmark_drivers.presets import PRESETS as _PRESETS

POSE_PRESETS = tuple(name for name, preset in _PRESETS.items() if preset.kind == "pose")  # slider presets

__all__ = ["POSE_PRESETS", "LiveDriver", "LiveOptions", "Direction", "LiveFrame", "LiveSession", "LiveStats"]
