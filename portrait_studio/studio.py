"""`Studio`: the application's one entry point, shared by the CLI, the UI and batch jobs.

render(): validate every input -> face analysis -> driver (FaceMotion) -> face rig (LandmarkTrack)
-> engine (frames, streamed) -> H.264 -> AAC mux -> atomic rename onto the output path.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmark_drivers import LandmarkTrack, SourceFace
from landmark_drivers.face_analysis import FaceAnalyzer, FaceModelMissingError, FaceTooSmallError, NoFaceError

from . import media
from .drivers import Drive, Signal, check_signal, drive
from .engines import EngineChoice, select_engine
from .errors import InputError
from .options import RenderOptions
from .portrait import Framing, load_portrait
from .progress import ProgressFn, no_progress
from .warp_engine import MotionControls, flow_preview, load_controls, warp_frames

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Portrait:
    """The pre-processed portrait and what face analysis found in it."""

    image: np.ndarray  # uint8 [H, W, 3] RGB at the output size
    face: SourceFace  # the animated (largest) face
    framing: Framing  # how the original photo maps onto `image` (for user masks and coordinates)


@dataclass(frozen=True)
class RenderResult:
    """What `Studio.render` wrote."""

    path: Path  # the output video
    engine: str  # "warp" or "mofa"
    num_frames: int  # frames in the video
    fps: float  # its frame rate
    duration: float  # seconds
    width: int  # frame width in pixels
    height: int  # frame height in pixels
    has_audio: bool  # whether an audio track was muxed


class Studio:
    """Renders talking portraits with fixed `RenderOptions`."""

    def __init__(self, options: RenderOptions | None = None) -> None:
        self.options = (options or RenderOptions()).validate()

    def prepare(self, image_path: str | Path, multiple: int = 2) -> Portrait:
        """Load, frame (short side = options.size, sides a multiple of `multiple`) and analyse the face.

        Raises InputError for an unreadable image, no face, or a face too small to animate.
        """
        photo = load_portrait(image_path)
        framing = Framing.fit(*photo.shape[:2], self.options.size, multiple)
        image = framing.apply_image(photo)
        try:
            with FaceAnalyzer() as analyzer:
                face = analyzer.analyze(image)
        except NoFaceError as exc:
            raise InputError(f"no face found in {image_path} ({exc})") from None
        except FaceTooSmallError as exc:
            raise InputError(f"the face in {image_path} is too small to animate ({exc})") from None
        except FaceModelMissingError as exc:
            raise InputError(str(exc)) from None
        return Portrait(image=image, face=face, framing=framing)

    def landmarks(self, image_path: str | Path, audio_path: str | Path | None, out: str | Path | None = None,
                  progress: ProgressFn = no_progress) -> LandmarkTrack:
        """The portrait's landmark track under the configured driver; saved as .npz when `out` is given."""
        signal = check_signal(self.options, audio_path)
        portrait = self.prepare(image_path)
        track = drive(self.options, signal, portrait, progress).track
        if out is not None:
            track.save(out)
        return track

    def render(self, image_path: str | Path, audio_path: str | Path | None, out: str | Path,
               progress: ProgressFn = no_progress) -> RenderResult:
        """Render `out` (.mp4/.mov/.mkv). Nothing is left at `out` on failure or interruption."""
        o = self.options
        # 1. validate every input before any output (errors are one line, nothing is written)
        out = media.check_output_path(out)
        signal: Signal = check_signal(o, audio_path)
        choice = select_engine(o.engine, o.ckpt_dir)
        portrait = self.prepare(image_path, multiple=64 if choice.name == "mofa" else 2)
        controls = load_controls(o, portrait.framing)
        engine = self._load_engine(choice, progress)  # mofa: its checkpoints load (or fail) here
        # 2. drive: motion -> landmark track
        logger.log(logging.WARNING if o.engine == "auto" else logging.INFO, "%s", choice.reason)
        driven: Drive = drive(o, signal, portrait, progress)
        track = driven.track
        if o.save_landmarks is not None:
            track.save(o.save_landmarks)
        # 3. render frames into a video-only temporary file, then mux the audio onto the output
        frames = self._frames(engine, portrait, track, controls, progress)
        height, width = portrait.image.shape[:2]
        with ExitStack() as stack:
            tmp_out = stack.enter_context(media.atomic_output(out))
            tmp_video = stack.enter_context(media.temporary_path(out, ".video.mp4"))
            debug = (stack.enter_context(_DebugVideos(o.debug_dir, portrait, track, controls))
                     if o.debug_dir else None)
            with media.VideoEncoder(tmp_video, width, height, track.fps) as encoder:
                for t, frame in enumerate(frames):
                    encoder.write(frame)
                    if debug is not None:
                        debug.write(t, frame)
                    progress("render", t + 1, track.num_frames)
            if encoder.frames != track.num_frames:
                raise RuntimeError(f"engine produced {encoder.frames} frames, expected {track.num_frames}")
            progress("mux", 0, 1)
            media.mux_audio(tmp_video, driven.audio, tmp_out, driven.duration)
            progress("mux", 1, 1)
            # leaving the stack deletes the video-only file and renames tmp_out onto `out`
        return RenderResult(path=out, engine=choice.name, num_frames=track.num_frames, fps=track.fps,
                            duration=driven.duration, width=width, height=height,
                            has_audio=driven.audio is not None)

    def _load_engine(self, choice: EngineChoice, progress: ProgressFn):
        """None for the warp engine (nothing to load); the loaded MofaPipeline for mofa."""
        if choice.name != "mofa":
            return None
        from .mofa_app import load_mofa

        return load_mofa(self.options, progress)

    def _frames(self, pipe, portrait: Portrait, track: LandmarkTrack, controls: MotionControls,
                progress: ProgressFn):
        if pipe is not None:
            from .mofa_app import mofa_frames

            return mofa_frames(self.options, portrait, track, controls, progress, pipe=pipe)
        return warp_frames(portrait, track, controls)


class _DebugVideos:
    """Landmark-overlay and flow-visualisation videos beside the render (streamed like the output)."""

    def __init__(self, directory: Path, portrait: Portrait, track: LandmarkTrack, controls: MotionControls) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.track = track
        h, w = portrait.image.shape[:2]
        self._flow = flow_preview(portrait, track, controls)
        self._overlay = media.VideoEncoder(self.directory / "landmarks.mp4", w, h, track.fps)
        self._flowvid = media.VideoEncoder(self.directory / "flow.mp4", w, h, track.fps)

    def write(self, t: int, frame: np.ndarray) -> None:
        from mofa_engine.visualize import draw_landmarks

        self._overlay.write(draw_landmarks(frame, self.track.points[t], self.track.reference))
        self._flowvid.write(self._flow(t))

    def __enter__(self) -> "_DebugVideos":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for enc in (self._overlay, self._flowvid):
            enc.__exit__(exc_type, exc, tb)
