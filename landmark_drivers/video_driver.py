"""The video driver: a driving video of a face -> `FaceMotion` for the portrait, as *relative* motion.

`drive_from_video` decodes the video with PyAV one frame at a time (memory does not grow with its
length: only ~70 numbers per frame are kept), analyses each frame with mediapipe in VIDEO mode
(`FaceAnalyzer.analyze_video_frame`), and retargets (`retarget.py`):

1. **Timeline.** Each frame is a sample at its own timestamp (pts), counted from the container's start
   (so a video track that starts after its audio stays in sync with it). Frames shown rotated by a
   display matrix (phone videos) are turned upright first, as players do.
2. **Reference.** `relative_to="first"`: the first frame with a face. `"neutral"`: the frame with the
   lowest sum of expression weights (every channel but `_neutral` and gaze, blinks included, after
   smoothing), for clips that start mid-word or mid-smile. Expressions *and* head pose are taken
   relative to that one frame: the reference frame maps onto the portrait as photographed.
3. **Expressions.** weights(t) - weights(ref), times `expressiveness`, clipped to [-1, 1]. Negative
   deltas are kept (a mouth open in the reference closes) but, given the portrait (`source`), limited
   so that the portrait's own weight plus the delta stays >= 0. Blinks and gaze pass through.
4. **Head.** Rotation relative to the reference head (yaw, pitch, roll in `FaceMotion`'s signs) and the
   shift of the head's pivot in units of the reference's eye-corner distance, z = relative scale; all
   times `head_motion`. Angles are limited to +-`MAX_ROTATION_DEG`, z to >= -0.5.
5. **Gaps.** Frames where no face is found are interpolated between the nearest found frames (held at the
   ends). Fewer than `min_face_fraction` (default 20 %) of frames with a face is an error: the motion
   would be mostly invented.
6. **Smoothing.** Zero-phase Gaussians on the source timeline (no lag): sigma `HEAD_SIGMA_S` (1.5 frames
   at 25 fps) on head pose, `EXPRESSION_SIGMA_S` on expressions (lips stay crisp), both times `smoothing`.
7. **Resampling.** Output frame k shows time k / fps, linear between the bracketing source frames
   (`resample.py`), so 24/29.97/60 fps sources stay in sync to the end. The motion has
   round(duration * fps) frames (duration = end of the last frame), or `num_frames` when the caller
   matches another length (an --audio track): beyond the video's end the last pose is held
   (`tail="hold"`) or eased back to the portrait over 0.4 s (`tail="neutral"`, the default).

Audio is the caller's business: `probe_driving_video` says whether the video has an audio track.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple

import numpy as np

from .blendshapes import NUM_BLENDSHAPES
from .motion import FaceMotion
from .resample import TailMode, fill_gaps, output_times, resample, smooth
from .retarget import (ReferenceMode, measure_head, reference_index, relative_blendshapes, relative_rotation,
                       relative_translation)
from .progress import ProgressFn

if TYPE_CHECKING:
    from .face_analysis import FaceAnalyzer
    from .source_face import SourceFace

logger = logging.getLogger(__name__)


HEAD_SIGMA_S = 0.06  # Gaussian sigma of head pose smoothing at smoothing=1 (1.5 frames at 25 fps)
EXPRESSION_SIGMA_S = 0.03  # ... of expression smoothing (0.75 frames at 25 fps: lips and blinks stay crisp)
TAIL_EASE_S = 0.4  # tail="neutral": seconds to ease back to the portrait after the video ends
MAX_ROTATION_DEG = 60.0  # relative head angles are limited to this (the rig accepts 90)
MIN_SCALE_CHANGE = -0.5  # translation z is limited to >= this (the face at half size)
MAX_ANALYSIS_SIDE = 960  # px: larger frames are downscaled before face analysis (mediapipe works at 256)
PROGRESS_EVERY = 10  # frames between progress reports
_STAGE = "driving video"


class DrivingVideoError(ValueError):
    """The driving video cannot be used; the one-line message names the file."""


class DrivingVideoInfo(NamedTuple):
    """What `probe_driving_video` reads from a video's headers (unpacks as a 4-tuple)."""

    duration: float  # seconds, from the container's start to the end of the last video frame
    fps: float  # the video stream's average frame rate
    has_audio: bool  # whether the file also holds an audio stream
    num_frames: int  # video frames (counted from the packets when the headers do not say)


@dataclass(frozen=True)
class VideoDriverOptions:
    """How a driving video becomes face motion."""

    fps: float = 25.0  # output frames per second (the source's rate does not matter; 1..240)
    relative_to: ReferenceMode = "first"  # reference frame: the first with a face, or the most neutral one
    smoothing: float = 1.0  # scale of the zero-phase smoothing (0 = raw per-frame measurements, <= 5)
    expressiveness: float = 1.0  # scale of the expression deltas (0 = still face, 1 = as driven, <= 3)
    head_motion: float = 1.0  # scale of head rotation/translation (0 = still head, 1 = as driven, <= 3)
    max_duration: float | None = 600.0  # seconds; longer videos are refused (None = no limit)
    min_face_fraction: float = 0.2  # fewer frames with a face than this share is an error (0..1)
    tail: TailMode = "neutral"  # after the video's end (num_frames beyond it): hold, or ease to the portrait

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fps) and 1.0 <= self.fps <= 240.0):
            raise ValueError(f"fps must be within 1..240, got {self.fps}")
        if self.relative_to not in ("first", "neutral"):
            raise ValueError(f"relative_to must be 'first' or 'neutral', got {self.relative_to!r}")
        for name, top in (("smoothing", 5.0), ("expressiveness", 3.0), ("head_motion", 3.0),
                          ("min_face_fraction", 1.0)):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0.0 <= value <= top):
                raise ValueError(f"{name} must be within 0..{top}, got {value}")
        if self.max_duration is not None and not (np.isfinite(self.max_duration) and self.max_duration > 0):
            raise ValueError(f"max_duration must be positive or None, got {self.max_duration}")
        if self.tail not in ("hold", "neutral"):
            raise ValueError(f"tail must be 'hold' or 'neutral', got {self.tail!r}")


# ---------------------------------------------------------------------------------------------- decoding

def _open(path: Path):
    import av

    try:
        return av.open(str(path))
    except FileNotFoundError:
        raise DrivingVideoError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DrivingVideoError(f"{path}: is a directory, not a video") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DrivingVideoError(f"{path}: not a readable video ({reason})") from None


def _video_stream(container, path: Path):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["nothing"]
        raise DrivingVideoError(f"{path}: no video stream (it holds {', '.join(kinds)})")
    return container.streams.video[0]


def _origin(container, stream) -> float | None:
    """Seconds of the container's start (None when the headers do not say)."""
    if container.start_time is not None:
        return container.start_time / 1_000_000  # AV_TIME_BASE
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return None


def _rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe_driving_video(path: str | Path) -> DrivingVideoInfo:
    """Duration, fps, audio presence and frame count of a driving video, without decoding frames.

    Raises DrivingVideoError when the file is missing, not a video, or has no video stream.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        fps, num_frames = _rate(stream), int(stream.frames or 0)
        has_audio = bool(container.streams.audio)
        origin = _origin(container, stream) or 0.0
        end = None
        if stream.duration and stream.time_base is not None:
            end = float(((stream.start_time or 0) + stream.duration) * stream.time_base)
        if end is None or num_frames == 0:  # e.g. Matroska: count the packets (demuxing only, cheap)
            count, last = 0, None
            try:
                for packet in container.demux(stream):
                    if packet.size == 0 or packet.pts is None:
                        continue
                    count += 1
                    stop = packet.pts + (packet.duration or 0)
                    last = stop if last is None else max(last, stop)
            except av.error.FFmpegError as exc:
                logger.warning("%s: stopped counting packets: %s", path, exc)
            num_frames = num_frames or count
            if end is None and last is not None:
                end = float(last * stream.time_base)
        duration = max(0.0, end - origin) if end is not None else (container.duration or 0) / 1_000_000
        if not fps and duration > 0 and num_frames:
            fps = num_frames / duration
        return DrivingVideoInfo(duration=float(duration), fps=float(fps), has_audio=has_audio,
                                num_frames=int(num_frames))
    finally:
        container.close()


def _upright_rgb(frame, max_side: int) -> np.ndarray:
    """uint8 RGB [H, W, 3] of a decoded frame, downscaled to `max_side` and turned as the display matrix says."""
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        w, h = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
        rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    turns = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb


def _decoded_frames(path: Path, max_duration: float | None) -> Iterator[tuple[float, float, np.ndarray]]:
    """Yield (start s, end s, upright RGB) per frame, times from the container's start, strictly increasing."""
    import av

    container = _open(path)
    try:
        stream = _video_stream(container, path)
        rate = _rate(stream) or 25.0
        origin = _origin(container, stream)
        last, index = None, 0
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else index / rate
                index += 1
                if origin is None:
                    origin = t
                t -= origin
                if last is not None and t <= last:
                    logger.debug("%s: frame at %.4f s does not follow %.4f s; skipped", path, t, last)
                    continue
                if max_duration is not None and t > max_duration:
                    raise DrivingVideoError(f"{path}: longer than the {max_duration:g} s limit (max_duration)")
                span = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 1.0 / rate
                last = t
                yield t, t + span, _upright_rgb(frame, MAX_ANALYSIS_SIDE)
        except av.error.FFmpegError as exc:
            if last is None:
                raise DrivingVideoError(f"{path}: not a readable video ({' '.join(str(exc).split())})") from None
            logger.warning("%s: decoding stopped at %.2f s (%s); using the frames before", path, last, exc)
    finally:
        container.close()


def read_video_frames(path: str | Path, max_duration: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time s, uint8 RGB [H, W, 3]) per decoded frame of a video, upright, downscaled to at most
    `MAX_ANALYSIS_SIDE`, times from the container's start and strictly increasing (streamed).

    Raises DrivingVideoError for a missing/unreadable file, no video stream or a video over `max_duration`.
    """
    for t, _, rgb in _decoded_frames(Path(path), max_duration):
        yield t, rgb


@dataclass
class _Samples:
    """Per-frame measurements on the source timeline (lists while decoding)."""

    times: list[float]
    found: list[bool]
    blendshapes: list[np.ndarray]  # [52] each
    axes: list[np.ndarray]  # [3, 3]
    pivots: list[np.ndarray]  # [3]
    units: list[float]
    scales: list[float]
    end: float = 0.0


def _analyse(path: Path, analyzer: "FaceAnalyzer", options: VideoDriverOptions, total: int,
             report: ProgressFn) -> _Samples:
    samples = _Samples([], [], [], [], [], [], [])
    analyzer.reset_video()
    last_ms = None
    try:
        for i, (t, end, rgb) in enumerate(_decoded_frames(path, options.max_duration)):
            ms = int(round(t * 1000))
            ms = ms if last_ms is None or ms > last_ms else last_ms + 1  # mediapipe needs increasing ms
            last_ms = ms
            face = analyzer.analyze_video_frame(rgb, ms)
            samples.times.append(t)
            samples.end = end
            samples.found.append(face is not None)
            if face is not None:
                head = measure_head(face.mesh)
                samples.blendshapes.append(np.asarray(face.blendshapes, np.float32))
                samples.axes.append(head.axes)
                samples.pivots.append(head.pivot)
                samples.units.append(head.unit)
                samples.scales.append(head.scale)
            if (i + 1) % PROGRESS_EVERY == 0:
                report(_STAGE, i + 1, max(total, i + 1))
    finally:
        analyzer.reset_video()
    return samples


# ---------------------------------------------------------------------------------------------- driver

def drive_from_video(path: str | Path, options: VideoDriverOptions | None = None,
                     progress: ProgressFn | None = None, *, num_frames: int | None = None,
                     source: "SourceFace | None" = None, analyzer: "FaceAnalyzer | None" = None) -> FaceMotion:
    """Face motion that replays the face of the driving video at `path` on the portrait (module docstring).

    num_frames: output length (default round(duration * options.fps)); the app passes the length of
        its --audio track here. Frames past the video's end follow `options.tail`.
    source: the portrait's face; when given, negative expression deltas stop at the portrait's own
        weights (`retarget.relative_blendshapes`).
    analyzer: a `FaceAnalyzer` to reuse (its video tracking is reset before and after); default: a new one.
    progress: called as (stage, frames done, frames expected).
    Raises DrivingVideoError (a ValueError) for a missing/unreadable file, no video stream, fewer than two
    frames, a video longer than `options.max_duration`, or faces in fewer than `min_face_fraction` of frames.
    """
    options = options or VideoDriverOptions()
    path = Path(path)
    if num_frames is not None and (isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 0):
        raise ValueError(f"num_frames must be a non-negative integer or None, got {num_frames!r}")
    report = progress or (lambda stage, done, total: None)

    # 1. headers: refuse what cannot work before decoding anything.
    info = probe_driving_video(path)
    if options.max_duration is not None and info.duration > options.max_duration + 0.5:
        raise DrivingVideoError(f"{path}: {info.duration:.1f} s is longer than the {options.max_duration:g} s "
                                "limit (max_duration)")
    if info.num_frames == 1:
        raise DrivingVideoError(f"{path}: only one frame (a still image?); a driving video needs motion")
    report(_STAGE, 0, info.num_frames)

    # 2. per-frame face analysis, streamed.
    if analyzer is None:
        from .face_analysis import FaceAnalyzer

        with FaceAnalyzer() as own:
            samples = _analyse(path, own, options, info.num_frames, report)
    else:
        samples = _analyse(path, analyzer, options, info.num_frames, report)
    report(_STAGE, len(samples.times), len(samples.times))
    _check_samples(path, samples, options.min_face_fraction)

    # 3. retarget and resample.
    out_fps = float(options.fps)
    total = int(round(samples.end * out_fps)) if num_frames is None else int(num_frames)
    blendshapes, rotation, translation = _retarget(samples, options, total, source)
    logger.info("%s: %d frames (%.2f s, %d with a face) -> %d frames at %g fps", path.name, len(samples.times),
                samples.end, sum(samples.found), total, out_fps)
    return FaceMotion(blendshapes=blendshapes.astype(np.float32), rotation=rotation.astype(np.float32),
                      translation=translation.astype(np.float32), fps=out_fps)


def _check_samples(path: Path, samples: _Samples, min_face_fraction: float) -> None:
    count, faces = len(samples.times), sum(samples.found)
    if count == 0:
        raise DrivingVideoError(f"{path}: the video stream has no frames")
    if count < 2:
        raise DrivingVideoError(f"{path}: only one frame (a still image?); a driving video needs motion")
    if faces == 0:
        raise DrivingVideoError(f"{path}: no face found in any of its {count} frames")
    if faces < min_face_fraction * count:
        raise DrivingVideoError(f"{path}: a face was found in only {faces} of {count} frames "
                                f"({faces / count:.0%}; at least {min_face_fraction:.0%} are needed)")
    if faces < count:
        logger.info("%s: no face in %d of %d frames; interpolated from the neighbours", path, count - faces, count)


def _retarget(samples: _Samples, options: VideoDriverOptions, num_frames: int,
              source: "SourceFace | None") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative blendshapes [T, 52], rotation [T, 3], translation [T, 3] at the output frames."""
    times, found = np.asarray(samples.times), np.asarray(samples.found)

    def on_timeline(values: np.ndarray, sigma_s: float) -> np.ndarray:
        full = np.zeros((len(times),) + values.shape[1:])
        full[found] = values  # [F, C] -> [N, C], gaps filled next
        return smooth(times, fill_gaps(times, full, found), sigma_s * options.smoothing)

    shapes = on_timeline(np.stack(samples.blendshapes), EXPRESSION_SIGMA_S)  # [N, 52]
    ref = reference_index(shapes, found, options.relative_to)
    ref_found = int(np.count_nonzero(found[:ref]))  # index of the reference among the found samples
    axes = np.stack(samples.axes)  # [F, 3, 3]
    angles = on_timeline(relative_rotation(axes, axes[ref_found]), HEAD_SIGMA_S)  # [N, 3]
    shift = on_timeline(relative_translation(np.stack(samples.pivots), np.asarray(samples.scales),
                                             samples.pivots[ref_found], samples.units[ref_found],
                                             samples.scales[ref_found]), HEAD_SIGMA_S)  # [N, 3]
    # Smoothing moved the reference a little off zero: re-zero it.
    angles -= angles[ref]
    shift -= shift[ref]
    own = np.asarray(source.blendshapes) if source is not None else None
    deltas = relative_blendshapes(shapes, shapes[ref], options.expressiveness, own)  # [N, 52]
    logger.info("driving reference: frame at %.2f s (%s)", times[ref], options.relative_to)

    out = output_times(num_frames, options.fps)
    kw = dict(end_time=samples.end, tail=options.tail, ease_s=TAIL_EASE_S)
    blendshapes = resample(times, deltas, out, **kw)
    rotation = resample(times, angles, out, **kw) * options.head_motion
    translation = resample(times, shift, out, **kw) * options.head_motion
    if np.abs(rotation).max(initial=0.0) > MAX_ROTATION_DEG:
        logger.warning("head rotation reaches %.0f deg relative to the reference; limited to %.0f",
                       np.abs(rotation).max(), MAX_ROTATION_DEG)
    rotation = np.clip(rotation, -MAX_ROTATION_DEG, MAX_ROTATION_DEG)
    translation[:, 2] = np.maximum(translation[:, 2], MIN_SCALE_CHANGE)
    return blendshapes.reshape(num_frames, NUM_BLENDSHAPES), rotation, translation
