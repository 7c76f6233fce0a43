"""SadTalker-compatible learned audio driver (`--audio-driver sadtalker`): speech -> LandmarkTrack.

Loads the published `SadTalker_V0.0.2_256.safetensors` (networks under the prefixes `audio2exp.`,
`audio2pose.`, `face_3drecon.`) and the Basel Face Model files from `BFM_Fitting/`.
"""

from .driver import (
    MissingSadTalkerFilesError,
    SadTalkerCheckpointError,
    SadTalkerDriver,
    SadTalkerFiles,
    SadTalkerOptions,
    required_files,
)

__all__ = [
    "MissingSadTalkerFilesError", "SadTalkerCheckpointError", "SadTalkerDriver", "SadTalkerFiles",
    "SadTalkerOptions", "required_files",
]
