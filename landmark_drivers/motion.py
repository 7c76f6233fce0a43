"""The two data types every driver and engine exchange: `FaceMotion` and `LandmarkTrack`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blendshapes import NUM_BLENDSHAPES, blendshape_index


@dataclass(frozen=True)
class FaceMotion:
    """What a face does over time, independent of any particular portrait.

    blendshapes: float32 [T, 52], ARKit weights in [0, 1] (order `BLENDSHAPE_NAMES`), *added to the
        portrait's own expression*: all zeros means "the portrait as photographed". Blinks are
        eyeBlinkLeft/Right; gaze is the eyeLook* channels.
    rotation: float32 [T, 3], head (yaw, pitch, roll) in degrees relative to the portrait's own pose.
        yaw > 0 turns the face toward image-left (the subject's right), pitch > 0 tilts the chin up,
        roll > 0 rotates the face clockwise on screen.
    translation: float32 [T, 3], head shift (x right, y down) in units of the portrait's inter-ocular
        distance, and z as a relative scale change (0.1 = 10 % larger, i.e. closer to the camera).
    fps: frames per second of the sequence.
    """

    blendshapes: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        t = self.blendshapes.shape[0] if self.blendshapes.ndim == 2 else -1
        if self.blendshapes.shape != (t, NUM_BLENDSHAPES):
            raise ValueError(f"blendshapes must be [T, {NUM_BLENDSHAPES}], got {self.blendshapes.shape}")
        if self.rotation.shape != (t, 3):
            raise ValueError(f"rotation must be [T, 3] with T={t}, got {self.rotation.shape}")
        if self.translation.shape != (t, 3):
            raise ValueError(f"translation must be [T, 3] with T={t}, got {self.translation.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.blendshapes.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @classmethod
    def still(cls, num_frames: int, fps: float) -> "FaceMotion":
        """A motion that holds the portrait as photographed for `num_frames` frames."""
        return cls(
            blendshapes=np.zeros((num_frames, NUM_BLENDSHAPES), np.float32),
            rotation=np.zeros((num_frames, 3), np.float32),
            translation=np.zeros((num_frames, 3), np.float32),
            fps=float(fps),
        )

    def channel(self, name: str) -> np.ndarray:
        """The [T] weight track of one ARKit blendshape, or of "yaw"/"pitch"/"roll"."""
        if name in ("yaw", "pitch", "roll"):
            return self.rotation[:, ("yaw", "pitch", "roll").index(name)]
        return self.blendshapes[:, blendshape_index(name)]


@dataclass(frozen=True)
class LandmarkTrack:
    """68-point iBUG landmarks over time, in source-image pixels (x = column, y = row).

    points: float32 [T, 68, 2]; frame t of the output video. points[0] is the portrait itself.
    reference: float32 [68, 2]; the portrait's own landmarks (equal to points[0]).
    fps: frames per second.
    """

    points: np.ndarray
    reference: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        if self.points.ndim != 3 or self.points.shape[1:] != (68, 2):
            raise ValueError(f"points must be [T, 68, 2], got {self.points.shape}")
        if self.reference.shape != (68, 2):
            raise ValueError(f"reference must be [68, 2], got {self.reference.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if not (np.isfinite(self.points).all() and np.isfinite(self.reference).all()):
            raise ValueError("landmark track contains non-finite coordinates")

    @property
    def num_frames(self) -> int:
        return int(self.points.shape[0])

    def save(self, path: str | Path) -> None:
        """Write an .npz with arrays `points`, `reference`, `fps` (atomic: temp file then rename)."""
        path = Path(path)
        part = path.with_name(path.name + ".part.npz")
        np.savez(part, points=self.points.astype(np.float32), reference=self.reference.astype(np.float32),
                 fps=np.float64(self.fps))
        part.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "LandmarkTrack":
        """Read an .npz written by `save` (no pickles are loaded)."""
        with np.load(Path(path), allow_pickle=False) as data:
            missing = {"points", "reference", "fps"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: not a landmark track (missing {sorted(missing)})")
            return cls(points=data["points"].astype(np.float32), reference=data["reference"].astype(np.float32),
                       fps=float(data["fps"]))
