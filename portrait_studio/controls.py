"""The user's background-motion controls (trajectories, motion brush) and masks, in output pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mofa_engine import load_trajectories

from .errors import InputError
from .portrait import Framing


@dataclass(frozen=True)
class MotionControls:
    """The user's background-motion controls, mapped into the output frame."""

    trajectories: list[np.ndarray] | None = None  # float64 [N_i, 2] (x, y) output pixels per trajectory
    brush: np.ndarray | None = None  # bool [H, W]: the region the trajectories move


def load_mask(path: Path, height: int, width: int) -> np.ndarray:
    """A user mask image resized to (height, width) as float32 [H, W] in [0, 1] (white = 1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            gray = img.convert("L").resize((width, height), Image.BILINEAR)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"mask {path} is not a readable image ({exc})") from None
    return np.asarray(gray, dtype=np.float32) / 255.0


def framed_mask(path: Path, framing: Framing) -> np.ndarray:
    """A user mask in the photo's pixels, framed like the portrait: float32 [H, W] in [0, 1]."""
    src_h, src_w = framing.source_size
    mask = load_mask(Path(path), src_h, src_w)
    return framing.apply_image(np.round(mask * 255).astype(np.uint8)).astype(np.float32) / 255


def load_controls(trajectory: Path | None, motion_brush: Path | None, framing: Framing) -> MotionControls:
    """Read and validate --trajectory / --motion-brush (photo coordinates) into the output frame."""
    if trajectory is None:
        return MotionControls()
    src_h, src_w = framing.source_size
    try:
        trajs = load_trajectories(trajectory, src_h, src_w)
    except (ValueError, OSError) as exc:
        raise InputError(f"bad --trajectory file: {exc}") from None
    trajs = [framing.apply_points(t) for t in trajs]
    brush = None
    if motion_brush is not None:
        mask = load_mask(motion_brush, src_h, src_w)
        brush = framing.apply_image((mask * 255).astype(np.uint8)) >= 128
    return MotionControls(trajs, brush)
