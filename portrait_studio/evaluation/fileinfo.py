"""The video file itself: codecs, size, frame rate, durations, and the bounds checked before decoding.

Everything here reads headers (and, where a container does not say, counts packets without decoding),
so a too-long or too-large video is refused before a single frame is decoded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputError
from ..limits import LIMITS
from ..media import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Limits:
    """What `evaluate` agrees to decode."""

    max_duration: float = 1200.0  # seconds of video (--max-duration; at most LIMITS.max_duration)
    max_frames: int = int(LIMITS.evaluate_frames.value)  # decoded frames (25 fps x 26 min)
    max_side: int = int(LIMITS.evaluate_long_side.value)  # px, the longer side of a frame

    def __post_init__(self) -> None:
        if not (0 < self.max_duration <= LIMITS.max_duration.value):
            raise InputError(f"--max-duration must be within 0..{LIMITS.max_duration}, got {self.max_duration:g}")
        if not (self.max_frames > 0 and self.max_side > 0):
            raise InputError(f"evaluate limits must be positive, got {self.max_frames} frames, {self.max_side} px")


@dataclass(frozen=True)
class FileInfo:
    """What a video file holds, from its headers."""

    path: str  # as given
    container: str  # demuxer name (e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")
    video_codec: str  # e.g. "h264"
    width: int  # px, as stored (before any display rotation)
    height: int  # px
    fps: float  # average frame rate
    num_frames: int  # from the headers, or counted from the packets
    duration: float  # seconds of video (frames / fps when the headers do not say)
    audio_codec: str | None  # None when there is no audio stream
    audio_sample_rate: int | None  # Hz
    audio_duration: float | None  # seconds
    av_difference: float | None  # audio duration - video duration, seconds (None without audio)
    audio_start: float  # seconds from the container's start (frame times count from there) to the first sample
    size_bytes: int  # the file's size

    def to_dict(self) -> dict:
        return asdict(self)


def _stream_seconds(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def probe_video(path: str | Path, limits: Limits | None = None) -> FileInfo:
    """Read a video's headers and check them against `limits` (default `Limits()`); InputError if unusable."""
    limits = limits or Limits()
    import av

    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(f"{path.name}: not a video file by its extension (use {', '.join(VIDEO_EXTENSIONS)})")
    if not path.is_file():
        raise InputError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise InputError(f"{path.name}: not a readable video file") from None
    try:
        if not container.streams.video:
            raise InputError(f"{path.name}: holds no video stream")
        video = container.streams.video[0]
        width, height = int(video.codec_context.width or 0), int(video.codec_context.height or 0)
        if width <= 0 or height <= 0:
            raise InputError(f"{path.name}: the video stream has no frame size")
        if max(width, height) > limits.max_side:
            raise InputError(f"{path.name}: {width}x{height} frames are larger than the {limits.max_side} px limit")
        rate = video.average_rate or video.guessed_rate or video.base_rate
        fps = float(rate) if rate else 0.0
        frames = int(video.frames or 0)
        duration = _stream_seconds(video)
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        if frames == 0:  # Matroska and friends: count packets (demuxing only), but not past the limit
            for packet in container.demux(video):
                if packet.size and packet.pts is not None:
                    frames += 1
                    if frames > limits.max_frames:
                        break
        if not fps > 0 and duration:
            fps = frames / duration
        if not (fps > 0 and frames > 0):
            raise InputError(f"{path.name}: the video stream holds no frames")
        duration = duration if duration else frames / fps
        if duration > limits.max_duration:
            raise InputError(f"{path.name} is {duration:.1f} s long, over the {limits.max_duration:g} s limit")
        if frames > limits.max_frames:
            raise InputError(f"{path.name} holds more than {limits.max_frames} frames (the limit)")
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_duration = _stream_seconds(audio) if audio is not None else None
        audio_start = 0.0
        if audio is not None and audio.start_time is not None and audio.time_base is not None:
            origin = container.start_time / 1_000_000 if container.start_time is not None else 0.0
            audio_start = max(0.0, float(audio.start_time * audio.time_base) - origin)  # < 0: encoder priming, trimmed
        return FileInfo(
            path=str(path), container=container.format.name, video_codec=video.codec_context.name,
            width=width, height=height, fps=round(fps, 4), num_frames=frames, duration=round(duration, 4),
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_sample_rate=int(audio.rate) if audio is not None and audio.rate else None,
            audio_duration=round(audio_duration, 4) if audio_duration is not None else None,
            av_difference=round(audio_duration - duration, 4) if audio_duration is not None else None,
            audio_start=round(audio_start, 4),
            size_bytes=path.stat().st_size)
    except av.error.FFmpegError:
        raise InputError(f"{path.name}: not a readable video file") from None
    finally:
        container.close()
