"""Media I/O: probe and decode audio, stream frames into H.264, mux AAC, write atomically.

Only this module runs ffmpeg, always with list arguments (never a shell). The ffmpeg binary is the
one `imageio-ffmpeg` ships (libx264 + aac), or `$PORTRAIT_STUDIO_FFMPEG`, or `ffmpeg` on PATH.

Memory stays flat with the video's length: frames are piped to an ffmpeg that encodes video only;
the audio is muxed afterwards by a second ffmpeg that copies the video stream (feeding raw frames
and an audio file to one ffmpeg makes it buffer ahead: measured 123 MB at 10 s, 222 MB at 60 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use; raises RuntimeError if there is none."""
    env = os.environ.get("PORTRAIT_STUDIO_FFMPEG")
    if env:
        return env
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise RuntimeError("no ffmpeg found: install the project (`make setup`) or put ffmpeg on PATH")


@dataclass(frozen=True)
class AudioInfo:
    """What a media file's first audio stream holds."""

    duration: float  # seconds, > 0
    sample_rate: int  # Hz of the stored stream
    channels: int  # stored channel count


def probe_audio(path: str | Path) -> AudioInfo:
    """Check that `path` holds decodable, non-empty audio; raise InputError saying what is wrong."""
    import av

    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio file not found: {path}")
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise InputError(f"{path} has no audio stream")
            stream = streams[0]
            rate, channels = int(stream.rate or 0), int(stream.channels or 0)
            duration = _stream_duration(container, stream)
    except InputError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not a readable audio file ({_short(exc)})") from None
    if rate <= 0 or channels <= 0 or not duration > 0:
        raise InputError(f"{path} holds no audio samples (zero-length audio)")
    return AudioInfo(duration=duration, sample_rate=rate, channels=channels)


def _stream_duration(container, stream) -> float:
    """Duration in seconds from the stream header, or by decoding when the header has none."""
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    samples = 0
    for frame in container.decode(stream):
        samples += frame.samples
    return samples / float(stream.rate)


def load_audio(path: str | Path, sample_rate: int = 16000, max_duration: float | None = None) -> np.ndarray:
    """Decode any audio ffmpeg reads to mono float32 samples in [-1, 1] at `sample_rate`.

    Returns: float32 [N]. Raises InputError for missing, corrupt, empty or over-long audio.
    """
    info = probe_audio(path)
    if max_duration is not None and info.duration > max_duration:
        raise InputError(
            f"{path} is {info.duration:.1f} s long, over the --max-duration limit of {max_duration:g} s"
        )
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1",
           "-ar", str(int(sample_rate)), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise InputError(f"{path} could not be decoded as audio ({_short(proc.stderr.decode(errors='replace'))})")
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise InputError(f"{path} holds no audio samples (zero-length audio)")
    return np.clip(np.nan_to_num(samples), -1.0, 1.0)


def num_video_frames(duration: float, fps: float) -> int:
    """Frames of a video that covers `duration` seconds at `fps`: round(duration * fps), at least 1."""
    return max(1, int(round(duration * fps)))


class VideoEncoder:
    """Streams RGB frames into an H.264 (yuv420p) file through an ffmpeg pipe (video only).

    Use as a context manager; `write(frame)` takes uint8 [H, W, 3] RGB. H and W must be even.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 18,
                 preset: str = "veryfast") -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs even frame sizes, got {width}x{height}")
        self.path, self.width, self.height = Path(path), int(width), int(height)
        self.frames = 0
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
               "-r", f"{fps:g}", "-i", "pipe:0",
               "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
               "-threads", "2", "-f", "mp4", str(self.path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    @property
    def pid(self) -> int:
        """Process id of the encoding ffmpeg (for measurements)."""
        return self._proc.pid

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 [{self.height}, {self.width}, 3], got {frame.dtype} {frame.shape}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            raise RuntimeError(f"ffmpeg stopped while encoding: {self._stderr()}") from None
        self.frames += 1

    def close(self) -> None:
        if self._proc.stdin and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        code = self._proc.wait()
        if code != 0:
            raise RuntimeError(f"ffmpeg failed to encode {self.path}: {self._stderr()}")

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.kill()
        self._proc.wait()

    def _stderr(self) -> str:
        data = self._proc.stderr.read() if self._proc.stderr else b""
        return _short(data.decode(errors="replace"))

    def __enter__(self) -> "VideoEncoder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def mux_audio(video: Path, audio: Path | None, out: Path, duration: float) -> None:
    """Copy the video stream of `video` and encode `audio` (any format) to AAC into `out`.

    The audio is cut to `duration` seconds; `audio=None` writes a video with no audio track.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(video)]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "160k",
                "-t", f"{duration:.6f}"]
    else:
        cmd += ["-map", "0:v:0"]
    cmd += ["-c:v", "copy", "-movflags", "+faststart", str(out)]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to mux {out}: {_short(proc.stderr.decode(errors='replace'))}")


@contextlib.contextmanager
def atomic_output(out: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `out`; rename it onto `out` only if the block succeeds.

    On any failure (including KeyboardInterrupt) the temporary file is removed and `out` is left as
    it was, so an interrupted render never leaves a broken file.
    """
    out = Path(out)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".part" + out.suffix, dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def temporary_path(beside: str | Path, suffix: str) -> Iterator[Path]:
    """Yield a fresh temporary file path in `beside`'s directory; the file is always removed after."""
    beside = Path(beside)
    fd, name = tempfile.mkstemp(prefix=f".{beside.stem}.", suffix=suffix, dir=beside.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(name).unlink()


def check_output_path(out: str | Path, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> Path:
    """Validate an output path before any work: extension, existing writable directory."""
    out = Path(out)
    if out.suffix.lower() not in extensions:
        raise InputError(f"unsupported output extension {out.suffix or '(none)'!r} for {out}; use one of {', '.join(extensions)}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output directory does not exist: {parent}")
    if out.is_dir():
        raise InputError(f"output path is a directory: {out}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".write-test-"):
            pass
    except OSError:
        raise InputError(f"output directory is not writable: {parent}") from None
    return out


def _short(text: object, limit: int = 200) -> str:
    """The last non-empty line of an error text, shortened: for one-line error messages."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[-1] if lines else str(text).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."
