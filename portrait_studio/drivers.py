"""The driving signal: which driver runs, on what, and which audio ends up in the video.

Inputs are checked by `check_signal` before anything is written or shown; `drive` then turns the
signal into a `LandmarkTrack` for the portrait:

| given                         | motion from                         | audio muxed                      |
|-------------------------------|-------------------------------------|----------------------------------|
| --audio                       | embedded or sadtalker audio driver  | --audio                          |
| --driving-video [--audio]     | the video's face                    | --audio, else the video's track  |
| --expression only             | the keyframes                       | none (silent video)              |
| --landmarks [--audio]         | the saved track                     | --audio if given                 |

`--expression` is layered over the audio or video driver (add/override per channel, see
`landmark_drivers.expressions`); over a learned (sadtalker) track its rig displacements are added.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from landmark_drivers import FaceMotion, LandmarkTrack
from landmark_drivers.audio.audio_driver import AudioDriverOptions, drive_from_audio, num_output_frames
from landmark_drivers.expressions import ExpressionTrack, apply_expression
from landmark_drivers.rig import FaceRig
from landmark_drivers.video_driver import (DrivingVideoError, DrivingVideoInfo, VideoDriverOptions,
                                           drive_from_video, probe_driving_video)

from . import media
from .ckpts import default_ckpt_dir
from .documents import load_expression_file, load_track_file
from .limits import LIMITS
from .errors import InputError, MissingCheckpointsError
from .options import RenderOptions
from .portrait import Portrait
from .progress import ProgressFn, no_progress

DRIVER_RATE = 16000  # Hz: what the audio drivers consume
TRACK_TOLERANCE = 0.25  # a saved track's reference may differ from the portrait by this many eye distances


@dataclass(frozen=True)
class Signal:
    """The validated driving inputs (files read and checked, nothing driven yet)."""

    audio: Path | None  # speech file (--audio)
    audio_info: media.AudioInfo | None  # its probe
    video: Path | None  # driving video
    video_info: DrivingVideoInfo | None  # its probe
    expression: ExpressionTrack | None  # parsed keyframes
    saved_track: LandmarkTrack | None  # --landmarks

    @property
    def mux_source(self) -> Path | None:
        """The file whose audio goes into the video, or None for a silent video."""
        if self.audio is not None:
            return self.audio
        if self.video is not None and self.video_info is not None and self.video_info.has_audio:
            return self.video
        return None


@dataclass(frozen=True)
class DriverModels:
    """Loaded models the drivers may reuse (the Studio's); defaults load their own."""

    analyzer: Callable[[], Any] | None = None  # () -> FaceAnalyzer (for the driving-video driver)
    cache: Any = field(default=None)  # an engines.ModelCache holding the SadTalker driver between calls


@dataclass(frozen=True)
class Drive:
    """A driven portrait: its landmark track and the audio to mux."""

    track: LandmarkTrack  # points [T, 68, 2] in output-frame pixels; track.fps is the video's rate
    audio: Path | None  # file whose first audio stream is muxed; None = silent

    @property
    def duration(self) -> float:
        return self.track.num_frames / self.track.fps


def check_signal(options: RenderOptions, audio: str | Path | None) -> Signal:
    """Read and validate every driving input; raise InputError (one line) on the first problem."""
    o = options
    audio = Path(audio) if audio is not None else None
    if audio is None and o.driving_video is None and o.expression is None and o.landmarks is None:
        raise InputError("nothing drives the portrait: give --audio, --driving-video, --expression or --landmarks")
    audio_info = None
    if audio is not None:
        audio_info = media.probe_audio(audio)
        _check_length(audio, audio_info.duration, o.max_duration)
    video_info = None
    if o.driving_video is not None:
        try:
            video_info = probe_driving_video(o.driving_video)
        except DrivingVideoError as exc:
            raise InputError(str(exc)) from None
        _check_length(o.driving_video, video_info.duration, o.max_duration)
        rate = max(video_info.fps, video_info.num_frames / video_info.duration if video_info.duration > 0 else 0.0)
        if rate > LIMITS.driving_video_fps.value:
            raise InputError(f"{o.driving_video} runs at {rate:.0f} fps, over the {LIMITS.driving_video_fps} limit "
                             "(driving video fps); convert it to a lower frame rate first")
    expression = load_expression_file(o.expression, o.max_duration) if o.expression is not None else None
    saved = load_track_file(o.landmarks, o.max_duration) if o.landmarks is not None else None
    if o.audio_driver == "sadtalker" and audio is not None and saved is None and o.driving_video is None:
        _check_sadtalker_files(o)
    return Signal(audio, audio_info, o.driving_video, video_info, expression, saved)


def _check_length(path: Path, duration: float, max_duration: float) -> None:
    if duration > max_duration:
        raise InputError(f"{path} is {duration:.1f} s long, over the --max-duration limit of {max_duration:g} s")


def _check_sadtalker_files(options: RenderOptions) -> None:
    from landmark_drivers.sadtalker import required_files

    files = required_files(options.ckpt_dir if options.ckpt_dir is not None else default_ckpt_dir())
    missing = [str(p) for p in files if not Path(p).is_file()]
    if missing:
        raise MissingCheckpointsError(f"--audio-driver sadtalker needs {', '.join(missing)} "
                                      "(see ckpts/README.md; the BFM files have their own licence)")


def drive(options: RenderOptions, signal: Signal, portrait: Portrait, progress: ProgressFn = no_progress,
          models: DriverModels | None = None, on_frames: Callable[[int, float], None] | None = None) -> Drive:
    """Run the driver(s) of `signal` on `portrait`, reusing `models` where given.

    on_frames(num_frames, fps): told the track's length before the embedded audio driver runs (its
    frame count follows from the decoded audio alone), so the caller can start work that needs it.
    """
    models = models or DriverModels()
    o = options
    rig = FaceRig(portrait.face)
    if signal.saved_track is not None:
        track = _fit_saved_track(signal.saved_track, portrait, signal.audio)
        return Drive(track, signal.audio)
    if signal.video is not None:
        num_frames = (media.num_video_frames(signal.audio_info.duration, o.fps) if signal.audio_info else None)
        opts = VideoDriverOptions(fps=o.fps, relative_to=o.relative_to, expressiveness=o.expressiveness,
                                  head_motion=o.head_motion, max_duration=o.max_duration)
        try:
            motion = drive_from_video(signal.video, opts, progress=progress, num_frames=num_frames,
                                      source=portrait.face,
                                      analyzer=models.analyzer() if models.analyzer is not None else None)
        except DrivingVideoError as exc:
            raise InputError(str(exc)) from None
        return Drive(rig.track(_layer(motion, signal.expression)), signal.mux_source)
    if signal.audio is not None:
        samples = media.load_audio(signal.audio, DRIVER_RATE, max_duration=o.max_duration)
        if o.audio_driver == "sadtalker":
            track = _sadtalker_track(o, samples, portrait, progress, models.cache)
            if signal.expression is not None:
                track = _add_expression(rig, track, signal.expression)
            return Drive(track, signal.audio)
        driver_options = AudioDriverOptions(fps=o.fps, seed=o.seed, head_motion=o.head_motion,
                                            expressiveness=o.expressiveness, transcript=o.transcript,
                                            language="english" if o.transcript else o.language)
        if on_frames is not None:
            on_frames(num_output_frames(samples.size, DRIVER_RATE, driver_options.fps), float(driver_options.fps))
        motion = drive_from_audio(samples, DRIVER_RATE, driver_options, progress=progress)
        return Drive(rig.track(_layer(motion, signal.expression)), signal.audio)
    expression = signal.expression
    num_frames = max(1, math.ceil(expression.duration * o.fps) + 1)
    return Drive(rig.track(expression.to_motion(num_frames, o.fps)), None)


def _layer(motion: FaceMotion, expression: ExpressionTrack | None) -> FaceMotion:
    return motion if expression is None else apply_expression(motion, expression)


def _add_expression(rig: FaceRig, track: LandmarkTrack, expression: ExpressionTrack) -> LandmarkTrack:
    """Add the keyframes' rig displacements to a learned track (frame 0 stays the portrait)."""
    motion = expression.to_motion(track.num_frames, track.fps)
    displacement = rig.deform(motion.blendshapes, motion.rotation, motion.translation) - rig.reference
    points = track.points.copy()
    points[1:] += displacement[1:].astype(np.float32)
    return LandmarkTrack(points=points, reference=track.reference, fps=track.fps)


def _sadtalker_track(options: RenderOptions, samples: np.ndarray, portrait: Portrait, progress: ProgressFn,
                     cache=None) -> LandmarkTrack:
    from landmark_drivers.sadtalker import (MissingSadTalkerFilesError, SadTalkerCheckpointError,
                                            SadTalkerDriver, SadTalkerOptions)

    ckpt_dir = Path(options.ckpt_dir if options.ckpt_dir is not None else default_ckpt_dir())

    def load() -> SadTalkerDriver:
        try:
            return SadTalkerDriver.from_checkpoint_dir(ckpt_dir)
        except MissingSadTalkerFilesError as exc:
            raise MissingCheckpointsError(str(exc)) from None
        except (SadTalkerCheckpointError, ValueError, OSError) as exc:
            raise InputError(f"the SadTalker checkpoint in {ckpt_dir} cannot be loaded: {exc}") from None

    driver = cache.get("sadtalker", str(ckpt_dir.resolve()), load) if cache is not None else load()
    driver.options = SadTalkerOptions(head_motion=min(options.head_motion, 3.0))  # per call, no reload
    return driver.drive(samples, portrait.image, portrait.face, fps=options.fps, pose_style=options.pose_style,
                        seed=options.seed, sample_rate=DRIVER_RATE,
                        progress=progress)


def _fit_saved_track(track: LandmarkTrack, portrait, audio: Path | None) -> LandmarkTrack:
    """Check that a saved track belongs to this portrait at this size; render it as saved."""
    face = portrait.face
    error = float(np.linalg.norm(track.reference - face.landmarks68, axis=1).mean()) / face.interocular
    if error > TRACK_TOLERANCE:
        h, w = portrait.image.shape[:2]
        raise InputError(f"the landmark track does not fit this portrait at {w}x{h} (its reference is "
                         f"{error:.2f} eye distances away): was it made from another image or --size?")
    return LandmarkTrack(points=track.points.astype(np.float32), reference=track.reference.astype(np.float32),
                         fps=track.fps)
