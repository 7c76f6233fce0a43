"""The references `evaluate` compares against: the asked-for landmark track and the source portrait's face."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .fileinfo import FileInfo
from .options import EvaluateOptions


def load_track(path: Path) -> np.ndarray:
    """Points float64 [T, 68, 2] of a saved landmark track (.npz from `render --save-landmarks`)."""
    from landmark_drivers import LandmarkTrack

    if path.suffix.lower() != ".npz":
        raise InputError(f"--landmarks takes a saved landmark track (.npz), got {path.name}")
    if not path.is_file():
        raise InputError(f"landmark track not found: {path}")
    try:
        return LandmarkTrack.load(path).points.astype(np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path.name} is not a landmark track ({type(exc).__name__})") from None


def driven_track(video: Path, image: Path, info: FileInfo) -> np.ndarray:
    """The track the app's video driver asks of `image` when driven by `video`, framed like the evaluated video."""
    from ..options import RenderOptions
    from ..studio import Studio

    options = RenderOptions(engine="warp", driving_video=video, fps=info.fps,
                            size=min(info.width, info.height)).validate()
    with Studio(options) as studio:
        return studio.landmarks(image, None).points.astype(np.float64)


def asked_track(options: EvaluateOptions, info: FileInfo) -> np.ndarray | None:
    """The asked-for motion in the evaluated video's pixels, or None when none was given."""
    if options.landmarks is not None:
        return load_track(options.landmarks)
    if options.driving_video is not None:
        return driven_track(options.driving_video, options.image, info)
    return None


def source_landmarks(image: Path) -> np.ndarray:
    """68 landmarks float64 [68, 2] of the source portrait, in its own pixels."""
    from landmark_drivers import FaceAnalyzer, FaceModelMissingError, FaceTooSmallError, NoFaceError

    from ..portrait import load_portrait

    photo = load_portrait(image)
    try:
        with FaceAnalyzer() as analyzer:
            return analyzer.analyze(photo).landmarks68.astype(np.float64)
    except (NoFaceError, FaceTooSmallError) as exc:
        raise InputError(f"--image {image.name}: {exc}") from None
    except FaceModelMissingError as exc:
        raise InputError(str(exc)) from None


def check_references(options: EvaluateOptions) -> None:
    """Read what `options` compares against, so a bad file fails before any frame is decoded."""
    from landmark_drivers import DrivingVideoError, probe_driving_video

    from ..portrait import load_portrait

    if options.landmarks is not None:
        load_track(options.landmarks)
    if options.driving_video is not None:
        try:
            probe_driving_video(options.driving_video)
        except DrivingVideoError as exc:
            raise InputError(f"--driving-video: {exc}") from None
    if options.image is not None:
        load_portrait(options.image)
