"""The user's background-motion controls (trajectories, motion brush) and masks, in output pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mofa_engine import CAMERA_NAMES, CameraMove  # noqa: F401 - CAMERA_NAMES: for the studio UI

from .documents import load_trajectory_file
from .errors import InputError
from .images import load_mask as load_mask_image
from .portrait import Framing


@dataclass(frozen=True)
class MotionControls:
    """The user's background-motion controls, mapped into the output frame."""

    trajectories: list[np.ndarray] | None = None  # float64 [N_i, 2] (x, y) output pixels per trajectory
    brush: np.ndarray | None = None  # bool [H, W]: the region the trajectories move
    camera: CameraMove | None = None  # a move of the whole frame over the clip (both engines)


def load_mask(path: Path, height: int, width: int) -> np.ndarray:
    """A user mask image resized to (height, width) as float32 [H, W] in [0, 1]: white = 1, transparent = 0.

    The image's pixel count is checked from its header before decoding (see `images.open_image`).
    """
    return load_mask_image(path, height, width)


def framed_mask(path: Path, framing: Framing) -> np.ndarray:
    """A user mask in the photo's pixels, framed like the portrait: float32 [H, W] in [0, 1]."""
    src_h, src_w = framing.source_size
    mask = load_mask(Path(path), src_h, src_w)
    return framing.apply_image(np.round(mask * 255).astype(np.uint8)).astype(np.float32) / 255


def load_controls(trajectory: Path | None, motion_brush: Path | None, framing: Framing,
                  camera: str | None = None) -> MotionControls:
    """Read and validate --trajectory / --motion-brush (photo coordinates) into the output frame, and --camera."""
    try:
        move = CameraMove.parse(camera) if camera else None
    except ValueError as exc:
        raise InputError(f"--camera: {exc}") from None
    if trajectory is None:
        return MotionControls(camera=move)
    src_h, src_w = framing.source_size
    trajs = load_trajectory_file(trajectory, src_h, src_w)  # within the document and trajectory limits
    trajs = [framing.apply_points(t) for t in trajs]
    brush = None
    if motion_brush is not None:
        mask = load_mask(motion_brush, src_h, src_w)
        brush = framing.apply_image((mask * 255).astype(np.uint8)) >= 128
    return MotionControls(trajs, brush, move)
