"""`Studio`: the application's one long-lived entry point, shared by the CLI, the studio UI, batch jobs,
the job API and live mode.

A Studio keeps what it loads (the face landmarker, the MOFA pipeline, the SadTalker networks) and
reuses it for every `render` and `landmarks` call; what a model depends on (checkpoint directory,
dtype) keys it, so a changed option reloads only what it must. Options may differ per call. One
render runs at a time per Studio (a lock; other callers wait). A render is cancelled through a
`threading.Event` and then leaves nothing behind.

render(): validate every input -> face analysis -> driver (FaceMotion) -> face rig (LandmarkTrack)
-> engine (frames, streamed) -> H.264 -> AAC mux -> atomic rename onto the output path.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from landmark_drivers import LandmarkTrack
from landmark_drivers.face_analysis import (MIN_INTEROCULAR, FaceAnalyzer, FaceModelMissingError, FaceNumberError,
                                            FaceTooSmallError, NoFaceError)

from . import media
from .controls import MotionControls, load_controls
from .drivers import Drive, DriverModels, Signal, check_signal, drive
from .engines import Engine, ModelCache, check_cancel, select_engine
from .errors import InputError, RenderCancelled
from .live.options import LiveOptions
from .live.session import LiveSession
from .options import RenderOptions
from .outputs import remove_stale_temporaries
from .portrait import Framing, Portrait, check_frame_size, face_too_small_message, load_portrait
from .progress import ProgressFn, no_progress
from .threads import thread_limit

logger = logging.getLogger(__name__)


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
    """Renders talking portraits; keeps its models loaded between calls. A context manager.

    options: the defaults of every call (each call may pass its own `options`).
    """

    def __init__(self, options: RenderOptions | None = None) -> None:
        self.options = (options or RenderOptions()).validate()
        self.models = ModelCache()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release every loaded model (idempotent); the Studio loads them again if used afterwards."""
        with self._lock:
            self.models.close()

    def __enter__(self) -> "Studio":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    # ------------------------------------------------------------------ models
    def face_analyzer(self) -> FaceAnalyzer:
        """The Studio's face landmarker (created on first use, then reused)."""
        from landmark_drivers.face_analysis import default_model_path

        def create() -> FaceAnalyzer:
            try:
                return FaceAnalyzer()
            except FaceModelMissingError as exc:
                raise InputError(str(exc)) from None

        return self.models.get("face", str(default_model_path()), create)

    def _driver_models(self) -> DriverModels:
        return DriverModels(analyzer=self.face_analyzer, cache=self.models)

    # ------------------------------------------------------------------ calls
    def prepare(self, image_path: str | Path, multiple: int = 2, *, options: RenderOptions | None = None) -> Portrait:
        """Load, frame (short side = options.size, sides a multiple of `multiple`) and analyse the face.

        Raises InputError for an unreadable image, no face, or a face too small to animate.
        """
        o = self._options(options)
        photo = load_portrait(image_path)
        framing = Framing.fit(*photo.shape[:2], o.size, multiple)
        check_frame_size(framing, image_path)
        image = framing.apply_image(photo)
        try:
            face = self.face_analyzer().analyze(image, face=o.face)
        except FaceNumberError as exc:
            raise InputError(f"--face: {exc}") from None
        except NoFaceError as exc:
            raise InputError(f"no face found in {image_path} ({exc})") from None
        except FaceTooSmallError as exc:
            raise InputError(face_too_small_message(image_path, exc.interocular, framing, exc.needed)) from None
        # measured in the photo's own pixels too: upscaling a thumbnail adds no detail to animate
        if face.interocular / framing.scale < MIN_INTEROCULAR:
            raise InputError(face_too_small_message(image_path, face.interocular, framing, MIN_INTEROCULAR))
        return Portrait(image=image, face=face, framing=framing)

    def live(self, image_path: str | Path, options: LiveOptions | None = None) -> LiveSession:
        """A live session for the portrait at `image_path` (`portrait_studio.live`): push camera frames or
        audio chunks, read portrait frames; close it (or use it as a context manager) when done.

        The session runs in its own thread with its own face landmarker (VIDEO mode, not shareable
        across threads), so it does not hold up other calls on this Studio.
        """
        live_options = (options or LiveOptions()).validate()
        with self._lock:
            prepared = self.prepare(image_path, options=replace(self.options, size=live_options.size))
        return LiveSession(prepared, live_options)

    def landmarks(self, image_path: str | Path, audio_path: str | Path | None, out: str | Path | None = None, *,
                  options: RenderOptions | None = None, progress: ProgressFn = no_progress,
                  cancel: threading.Event | None = None) -> LandmarkTrack:
        """The portrait's landmark track under the driver of `options`; saved as .npz when `out` is given.

        `out` is checked before any work (extension .npz, writable directory, not one of the inputs) and
        written atomically.
        """
        o = self._options(options)
        if out is not None:
            out = media.check_output_path(out, input_paths(o, image_path, audio_path), (".npz",))
        with self._lock, thread_limit(1):
            signal = check_signal(o, audio_path)
            portrait = self.prepare(image_path, options=o)
            check_cancel(cancel)
            track = _first_seconds(drive(o, signal, portrait, progress, self._driver_models()), o.duration).track
            check_cancel(cancel)
            if out is not None:
                with media.atomic_output(out) as tmp:
                    save_track(track, tmp)
            return track

    def render(self, image_path: str | Path, audio_path: str | Path | None, out: str | Path, *,
               options: RenderOptions | None = None, progress: ProgressFn = no_progress,
               cancel: threading.Event | None = None) -> RenderResult:
        """Render `out` (.mp4/.mov/.mkv) with `options` (default: the Studio's).

        Nothing is left at `out` (nor a temporary file beside it) on failure, interruption or
        cancellation (`cancel` set: RenderCancelled within one frame or one denoising step).
        """
        o = self._options(options)
        with self._lock:
            engine = select_engine(o, self.models)
            with thread_limit(engine.threads):
                return self._render(o, engine, image_path, audio_path, out, progress, cancel)

    # ------------------------------------------------------------------ internals
    def _options(self, options: RenderOptions | None) -> RenderOptions:
        return self.options if options is None else options.validate()

    def _render(self, o: RenderOptions, engine: Engine, image_path: str | Path, audio_path: str | Path | None,
                out: str | Path, progress: ProgressFn, cancel: threading.Event | None) -> RenderResult:
        # 1. validate every input and output before any work (errors are one line, nothing is written)
        inputs = input_paths(o, image_path, audio_path)
        out = media.check_output_path(out, inputs)
        if o.save_landmarks is not None:
            media.check_output_path(o.save_landmarks, [*inputs, out], (".npz",), what="--save-landmarks")
        if o.debug_dir is not None:
            check_debug_dir(o.debug_dir, [*inputs, out] + ([o.save_landmarks] if o.save_landmarks else []))
        signal: Signal = check_signal(o, audio_path)
        portrait = self.prepare(image_path, multiple=engine.multiple, options=o)
        controls = load_controls(o.trajectory, o.motion_brush, portrait.framing, o.camera)
        check_cancel(cancel)
        engine.load(progress)  # mofa: its checkpoints load (or fail) here, once per Studio
        logger.info("%s", engine.reason)
        # 2. drive: motion -> landmark track (the output's AAC is encoded meanwhile, once its length is known)
        with _AudioAhead(signal.audio, out, o.duration) as audio_ahead:
            driven: Drive = _first_seconds(drive(o, signal, portrait, progress, self._driver_models(),
                                                 on_frames=audio_ahead.start), o.duration)
            track = driven.track
            check_cancel(cancel)
            # 3. render frames into a video-only temporary file, then mux the audio onto the output; every
            # output is renamed into place only when all of them succeeded
            state_path = resume_state_path(out)
            if o.mofa.resume:  # resuming says the last render to `out` was killed: its temporaries go now, whatever
                remove_stale_temporaries(out, max_age=0)  # their age (those of a process still running are kept)
            try:
                result = self._write(o, engine, out, state_path, portrait, track, controls, driven, progress, cancel,
                                     audio_ahead)
            except RenderCancelled:
                remove_resume_state(state_path)  # a cancelled render leaves nothing behind
                raise
        remove_resume_state(state_path)  # the video is written: nothing left to resume
        return result

    def _write(self, o: RenderOptions, engine: Engine, out: Path, state_path: Path, portrait: Portrait,
               track: LandmarkTrack, controls: MotionControls, driven: Drive, progress: ProgressFn,
               cancel: threading.Event | None, audio_ahead: "_AudioAhead") -> RenderResult:
        frames = engine.frames(portrait, track, controls, progress, cancel, state_path=state_path)
        height, width = portrait.image.shape[:2]
        with ExitStack() as stack:
            tmp_out = stack.enter_context(media.atomic_output(out))
            if o.save_landmarks is not None:
                save_track(track, stack.enter_context(media.atomic_output(o.save_landmarks)))
            tmp_video = stack.enter_context(media.temporary_path(out, "video"))
            debug = (stack.enter_context(_DebugVideos(o.debug_dir, portrait, track, controls))
                     if o.debug_dir else None)
            with media.VideoEncoder(tmp_video, width, height, track.fps) as encoder:
                for t, frame in enumerate(frames):
                    encoder.write(frame)
                    if debug is not None:
                        debug.write(t, frame)
                    progress("render", t + 1, track.num_frames)
                    check_cancel(cancel)
            if encoder.frames != track.num_frames:
                raise RuntimeError(f"engine produced {encoder.frames} frames, expected {track.num_frames}")
            progress("mux", 0, 1)
            encoded = audio_ahead.encoded(driven.audio, driven.duration)
            if encoded is not None:
                media.mux_audio(tmp_video, driven.audio, tmp_out, driven.duration, encoded=encoded)
            else:
                with media.muxable_audio(driven.audio, out, driven.duration) as audio:
                    media.mux_audio(tmp_video, audio, tmp_out, driven.duration)
            check_cancel(cancel)
            progress("mux", 1, 1)
            # leaving the stack deletes the video-only file and renames the temporary files into place
        if o.engine == "auto":  # said only now, so that an input error stays the only line on stderr
            logger.warning("%s", engine.reason)
        return RenderResult(path=out, engine=engine.name, num_frames=track.num_frames, fps=track.fps,
                            duration=driven.duration, width=width, height=height,
                            has_audio=driven.audio is not None)


def resume_state_path(out: Path) -> Path:
    """Where an engine keeps a render's resumable state: beside `out`, `<name>.resume.safetensors`."""
    return out.with_name(out.name + ".resume.safetensors")


def remove_resume_state(state_path: Path) -> None:
    """Delete the resumable state and any temporary file a killed writer left beside it."""
    state_path.unlink(missing_ok=True)
    for stale in state_path.parent.glob(f".{state_path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def input_paths(options: RenderOptions, image_path: str | Path, audio_path: str | Path | None) -> list[Path]:
    """Every file a render with `options` reads: no output may be one of them."""
    o = options
    paths = [image_path, audio_path, o.driving_video, o.expression, o.landmarks, o.trajectory,
             o.motion_brush, o.mofa.landmark_mask]
    return [Path(p) for p in paths if p is not None]


DEBUG_VIDEOS = ("landmarks.mp4", "flow.mp4")  # what --debug-dir holds after a render


def check_debug_dir(directory: str | Path, inputs: list[Path]) -> None:
    """Validate --debug-dir before any work: a directory (or a new one in an existing directory) whose
    debug videos would not overwrite any input."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--debug-dir {directory} exists and is not a directory")
    if not directory.exists():
        parent = directory.parent if str(directory.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"--debug-dir directory's parent does not exist: {parent}")
        return
    for name in DEBUG_VIDEOS:
        media.check_output_path(directory / name, inputs, what="--debug-dir video")


def save_track(track: LandmarkTrack, path: Path) -> None:
    """Write `track` as an .npz (arrays `points`, `reference`, `fps`) to exactly `path`."""
    with open(path, "wb") as f:
        np.savez(f, points=track.points.astype(np.float32), reference=track.reference.astype(np.float32),
                 fps=np.float64(track.fps))


def _first_seconds(driven: Drive, seconds: float | None) -> Drive:
    """The first `seconds` of a driven clip (--duration); the audio is cut to match when muxed."""
    if seconds is None:
        return driven
    keep = media.num_video_frames(seconds, driven.track.fps)
    if keep >= driven.track.num_frames:
        return driven
    track = driven.track
    return Drive(LandmarkTrack(track.points[:keep], track.reference, track.fps), driven.audio)


class _AudioAhead:
    """The output's AAC track, encoded by a background ffmpeg (`media.AudioEncoder`) from the moment the video's
    length is known (`drive`'s on_frames) while the audio driver keeps the other core busy; the mux then only
    copies it (0.55 s less at the end of a 60 s render). A context manager: leaving it stops the encode and
    removes its file."""

    def __init__(self, audio: Path | None, out: Path, seconds: float | None) -> None:
        self._audio, self._out, self._seconds = audio, out, seconds  # seconds: --duration, the cut to apply
        self._stack = ExitStack()
        self._encoder: media.AudioEncoder | None = None

    def start(self, num_frames: int, fps: float) -> None:
        if self._audio is None or self._encoder is not None:
            return
        if self._seconds is not None:  # what `_first_seconds` keeps
            num_frames = min(num_frames, media.num_video_frames(self._seconds, fps))
        duration = num_frames / fps  # as `Drive.duration` computes it
        source = self._stack.enter_context(media.muxable_audio(self._audio, self._out, duration))
        path = self._stack.enter_context(media.temporary_path(self._out, "aac", ".m4a"))
        self._encoder = self._stack.enter_context(media.AudioEncoder(source, path, duration))

    def encoded(self, audio: Path | None, duration: float) -> Path | None:
        """The encoded track when it is `audio` cut to `duration` (waiting for it), else None."""
        if self._encoder is None or audio != self._audio or duration != self._encoder.duration:
            return None
        return self._encoder.wait()

    def __enter__(self) -> "_AudioAhead":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stack.close()


class _DebugVideos:
    """Landmark-overlay and flow-visualisation videos in --debug-dir (streamed like the output, atomic:
    renamed into place only when the render succeeds; a directory it created is removed on failure)."""

    def __init__(self, directory: Path, portrait: Portrait, track: LandmarkTrack, controls: MotionControls) -> None:
        from .engines.warp import flow_preview

        self.directory = Path(directory)
        self._created = not self.directory.exists()
        self.directory.mkdir(exist_ok=True)
        self.track = track
        self._stack = ExitStack()
        try:
            h, w = portrait.image.shape[:2]
            self._flow = flow_preview(portrait, track, controls)
            tmp = [self._stack.enter_context(media.atomic_output(self.directory / n)) for n in DEBUG_VIDEOS]
            self._overlay = self._stack.enter_context(media.VideoEncoder(tmp[0], w, h, track.fps))
            self._flowvid = self._stack.enter_context(media.VideoEncoder(tmp[1], w, h, track.fps))
        except BaseException:
            self._stack.close()
            self._remove_created()
            raise

    def write(self, t: int, frame: np.ndarray) -> None:
        from mofa_engine import draw_landmarks

        self._overlay.write(draw_landmarks(frame, self.track.points[t], self.track.reference))
        self._flowvid.write(self._flow(t))

    def _remove_created(self) -> None:
        if self._created:
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def __enter__(self) -> "_DebugVideos":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            return bool(self._stack.__exit__(exc_type, exc, tb))
        finally:
            if exc_type is not None:
                self._remove_created()
