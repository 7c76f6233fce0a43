"""`evaluate_video`: one pass over a video's frames feeds every measure; memory stays flat with length.

Per decoded frame only a few numbers are kept (68 landmarks, two mean colours, two background changes,
a sharpness sample now and then) plus the first and the previous frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError
from ..progress import ProgressFn, no_progress
from . import control, drift, jitter, lipsync, stillness
from .asked import check_references
from .colour import cpbd
from .fileinfo import FileInfo, Limits, probe_video
from .options import EvaluateOptions

logger = logging.getLogger(__name__)

ANALYSIS_MAX_SIDE = 640  # px: larger frames are downscaled (area) before any measure
AUDIO_RATE = 16000  # Hz the audio is decoded at for the loudness envelope
PROGRESS_EVERY = 10  # frames between progress reports


@dataclass
class _Frames:
    """Per-frame measurements, filled while decoding."""

    times: list[float] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    face_lab: list[np.ndarray] = field(default_factory=list)
    back_lab: list[np.ndarray] = field(default_factory=list)
    to_previous: list[float] = field(default_factory=list)
    to_first: list[float] = field(default_factory=list)
    cpbd_times: list[float] = field(default_factory=list)
    cpbd_values: list[float] = field(default_factory=list)


def _decode(path: Path, info: FileInfo, limits: Limits) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds from the container's start, uint8 RGB frame at analysis size) for each frame, in order."""
    import av

    scale = min(1.0, ANALYSIS_MAX_SIDE / max(info.width, info.height))
    w, h = (max(2, int(round(info.width * scale))), max(2, int(round(info.height * scale))))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = container.start_time / 1_000_000 if container.start_time is not None else None
        last, index = None, 0
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else index / info.fps
                index += 1
                if index > limits.max_frames:
                    raise InputError(f"{path.name} decodes to more than {limits.max_frames} frames (the limit)")
                origin = t if origin is None else origin
                t -= origin
                if last is not None and t <= last:
                    continue
                last = t
                yield t, (frame.to_ndarray(format="rgb24", width=w, height=h) if scale < 1.0
                          else frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError:
            if last is None:
                raise InputError(f"{path.name}: no frame could be decoded") from None
            logger.warning("%s: decoding stopped at %.2f s; measuring the frames before", path.name, last)


def _analyse(path: Path, info: FileInfo, limits: Limits, progress: ProgressFn) -> tuple[_Frames, tuple[int, int]]:
    from landmark_drivers import FaceAnalyzer, FaceModelMissingError

    acc = _Frames()
    first = previous = None
    first_head = None
    cpbd_every = max(1, int(round(info.fps / drift.CPBD_PER_S)))
    try:
        analyzer = FaceAnalyzer()
    except FaceModelMissingError as exc:
        raise InputError(str(exc)) from None
    size = (0, 0)
    with analyzer:
        last_points, stamp = None, -1
        for k, (t, frame) in enumerate(_decode(path, info, limits)):
            h, w = size = frame.shape[:2]
            stamp = max(stamp + 1, int(round(t * 1000)))  # mediapipe wants strictly increasing milliseconds
            face = analyzer.analyze_video_frame(frame, stamp)
            points = face.landmarks68.astype(np.float64) if face is not None else None
            acc.times.append(t)
            acc.points.append(points if points is not None else np.full((68, 2), np.nan))
            head = stillness.head_mask(points if points is not None else last_points, h, w)
            if first is None:
                first, first_head = frame, head
            acc.to_first.append(stillness.mean_abs_change(frame, first, ~(head | first_head)))
            acc.to_previous.append(float("nan") if previous is None else
                                   stillness.mean_abs_change(frame, previous[0], ~(head | previous[1] | first_head)))
            acc.back_lab.append(drift.mean_lab(frame, ~(head | first_head)))
            acc.face_lab.append(drift.mean_lab(frame, drift.face_colour_mask(points, h, w)) if points is not None
                                else np.full(3, np.nan))
            if k % cpbd_every == 0:
                acc.cpbd_times.append(t)
                acc.cpbd_values.append(cpbd(frame))
            previous = (frame, head)
            last_points = points if points is not None else last_points
            if k % PROGRESS_EVERY == 0:
                progress(f"evaluate {path.name}", k + 1, info.num_frames)
    progress(f"evaluate {path.name}", info.num_frames, info.num_frames)
    return acc, size


def _audio(path: Path, options: EvaluateOptions, info: FileInfo) -> tuple[np.ndarray | None, str]:
    """Mono samples at AUDIO_RATE (time 0 = the video's start) and where they came from."""
    from .. import media

    source = options.audio if options.audio is not None else path
    if options.audio is None and info.audio_codec is None:
        return None, "none"
    samples = media.load_audio(source, AUDIO_RATE, max_duration=options.limits.max_duration)
    return samples, str(source)


def _asked(options: EvaluateOptions, info: FileInfo, size: tuple[int, int]) -> np.ndarray | None:
    """The asked-for landmark track float [T, 68, 2] in analysis pixels, or None."""
    from .asked import asked_track

    track = asked_track(options, info)
    if track is None:
        return None
    return track * (size[1] / info.width)


@dataclass(frozen=True)
class VideoMeasures:
    """What one pass over a video's frames measured (per frame unless said otherwise)."""

    path: Path  # the video
    info: FileInfo  # its headers
    size: tuple[int, int]  # (height, width) the frames were measured at
    times: np.ndarray  # float64 [T] seconds from the container's start
    points: np.ndarray  # float64 [T, 68, 2] landmarks in measured pixels; NaN where no face was found
    face_lab: np.ndarray  # float64 [T, 3] mean CIELAB of the face (NaN without a face)
    background_lab: np.ndarray  # float64 [T, 3] mean CIELAB of the background
    to_previous: np.ndarray  # float64 [T] background change against the previous frame (NaN at 0)
    to_first: np.ndarray  # float64 [T] background change against frame 0
    cpbd_times: np.ndarray  # float64 [S] times of the sharpness samples
    cpbd_values: np.ndarray  # float64 [S] their CPBD


def measure_frames(path: str | Path, limits: Limits | None = None, progress: ProgressFn = no_progress) -> VideoMeasures:
    """Decode `path` once (headers checked against `limits`, default `Limits()`, first) and measure every frame."""
    path, limits = Path(path), limits or Limits()
    info = probe_video(path, limits)
    acc, size = _analyse(path, info, limits, progress)
    points = np.stack(acc.points)  # [T, 68, 2]
    if not np.isfinite(points).all(axis=(1, 2)).any():
        raise InputError(f"{path.name}: no face found in any frame")
    return VideoMeasures(path=path, info=info, size=size, times=np.asarray(acc.times), points=points,
                         face_lab=np.stack(acc.face_lab), background_lab=np.stack(acc.back_lab),
                         to_previous=np.asarray(acc.to_previous), to_first=np.asarray(acc.to_first),
                         cpbd_times=np.asarray(acc.cpbd_times), cpbd_values=np.asarray(acc.cpbd_values))


def summarise(m: VideoMeasures, options: EvaluateOptions) -> dict:
    """Every measure as a JSON-ready dict (plus `_series`, the curves the plot draws), from one pass's data.

    Reads the audio, asked-for motion and portrait that `options` names; several summaries of one pass
    (other audio, other tracks) cost no decoding.
    """
    samples, audio_source = _audio(m.path, options, m.info)
    found = np.isfinite(m.points).all(axis=(1, 2))
    aperture = lipsync.mouth_aperture(m.points)
    fps = m.info.fps
    result: dict = {"video": str(m.path), "file": m.info.to_dict(),
                    "frames_measured": int(len(m.times)), "face_found_fraction": round(float(found.mean()), 4),
                    "analysis_size": [int(m.size[1]), int(m.size[0])], "audio_source": audio_source}
    series: dict = {"times": m.times, "aperture": aperture}
    if samples is not None:
        start = m.info.audio_start if options.audio is None else 0.0  # --audio starts with the video
        envelope = lipsync.loudness_envelope(samples, AUDIO_RATE, m.times - start, fps)
        result["lipsync"] = lipsync.lip_sync(aperture, envelope, fps).to_dict()
        result["silence"] = lipsync.silence(aperture, envelope, fps)
        series["loudness_db"] = envelope
    asked = _asked(options, m.info, m.size)
    if asked is not None:
        result["control"] = control.control_error(m.points, asked)
    geometry = None
    if options.image is not None:
        from .asked import source_landmarks

        geometry = drift.procrustes_distance(m.points, source_landmarks(options.image))
    result["drift"] = drift.drift(m.times, m.face_lab, m.background_lab, m.cpbd_times, m.cpbd_values, geometry,
                                  options.window_s)
    result["background"] = stillness.summary(m.to_previous, m.to_first)
    result["jitter"] = jitter.jitter(m.points, m.times)
    series.update(to_previous=m.to_previous, to_first=m.to_first)
    result["_series"] = series  # for the plot; dropped from the JSON
    return result


def evaluate_video(path: str | Path, options: EvaluateOptions | None = None,
                   progress: ProgressFn = no_progress) -> dict:
    """Every measure of one video as a JSON-ready dict (definitions: `evaluation.definitions.MEASURES`).

    Raises InputError for an unusable video, audio, track or image (one line, nothing written).
    """
    options = options or EvaluateOptions()
    path = Path(path)
    info = probe_video(path, options.limits)
    _audio(path, options, info)  # a bad --audio, track or portrait fails before the frames are decoded
    check_references(options)
    return summarise(measure_frames(path, options.limits, progress), options)
