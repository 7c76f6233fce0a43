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
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError
from .outputs import VIDEO_EXTENSIONS, atomic_output, check_output_path, same_file, temporary_path

__all__ = ["AudioEncoder", "AudioInfo", "VIDEO_EXTENSIONS", "VideoEncoder", "atomic_output", "check_output_path",
           "clean_samples", "ffmpeg_exe", "load_audio", "mux_audio", "muxable_audio", "num_video_frames",
           "probe_audio", "same_file", "temporary_path"]

logger = logging.getLogger(__name__)

# decoders whose samples are stored floats: the only ones that can hold NaN/inf or values far past full scale
FLOAT_PCM_CODECS = ("pcm_f16le", "pcm_f24le", "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be")


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
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, AttributeError) as exc:
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
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-vn", "-map", "0:a:0", "-ac", "1",
           "-ar", str(int(sample_rate))]
    if max_duration is not None:  # a header that lies about the length cannot make the decode unbounded
        cmd += ["-t", f"{max_duration + 1:.3f}"]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise InputError(f"{path} could not be decoded as audio ({_short(proc.stderr.decode(errors='replace'))})")
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise InputError(f"{path} holds no audio samples (zero-length audio)")
    return clean_samples(samples)


def clean_samples(samples: np.ndarray, peak: float | None = None) -> np.ndarray:
    """NaN and +/-inf -> 0; samples past full scale scaled down so the peak is 1. float32 [N] in [-1, 1].

    peak: the largest finite |sample| of the whole signal when `samples` is one chunk of it (so every
    chunk is scaled alike); None = measure it here.
    """
    samples = np.asarray(samples, dtype=np.float32)
    finite = np.isfinite(samples)
    samples = np.where(finite, samples, np.float32(0.0))
    if peak is None:
        peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 1.0:
        samples = samples / np.float32(peak)
    return np.clip(samples, -1.0, 1.0)


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
        # unbuffered: a frame goes from its own memory straight into the pipe, no copy on the way
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        _widen_pipe(self._proc.stdin.fileno(), self.width * self.height * 3)

    @property
    def pid(self) -> int:
        """Process id of the encoding ffmpeg (for measurements)."""
        return self._proc.pid

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 [{self.height}, {self.width}, 3], got {frame.dtype} {frame.shape}")
        data = memoryview(np.ascontiguousarray(frame)).cast("B")
        try:
            while data:  # a raw write may take part of the frame (a signal); write the rest
                data = data[self._proc.stdin.write(data):]
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


def _widen_pipe(fd: int, frame_bytes: int) -> None:
    """Let the pipe `fd` hold a whole frame (up to the system's limit), so `write` hands a frame over and goes
    back to work while ffmpeg reads it, instead of waiting in step with ffmpeg's reads of the default 64 KiB.

    Linux only (F_SETPIPE_SZ); elsewhere, or when the limit or a per-user quota refuses, the pipe stays as it is.
    """
    try:
        import fcntl

        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, min(max(frame_bytes, 1 << 16), limit))
    except (ImportError, AttributeError, OSError, ValueError):
        pass


AAC_ARGS = ("-c:a", "aac", "-b:a", "160k")  # the output's audio codec and bit rate


class AudioEncoder:
    """Encodes the first `duration` s of `audio` to AAC in `path` (.m4a) in a background ffmpeg.

    Started while the driver or the engine still work (the audio driver keeps one core busy, the other is
    idle), so that `mux_audio(..., encoded=encoder.wait())` only copies streams: the AAC packets are the ones
    `mux_audio` would have encoded itself. A context manager; leaving it stops an unfinished encode.
    """

    def __init__(self, audio: Path, path: Path, duration: float) -> None:
        self.path, self.duration = Path(path), float(duration)
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(audio), "-map", "0:a:0", "-vn", *AAC_ARGS,
               "-t", f"{duration:.6f}", "-f", "mp4", str(self.path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self) -> Path:
        """The encoded file, once ffmpeg is done; RuntimeError if it failed."""
        _, err = self._proc.communicate()
        if self._proc.returncode != 0:
            reason = _short(err.decode(errors="replace"))
            raise RuntimeError(f"ffmpeg failed to encode the audio of {self.path}: {reason}")
        return self.path

    def abort(self) -> None:
        """Stop the encode if it still runs (idempotent; a finished one is left as it is)."""
        if self._proc.returncode is None:
            with contextlib.suppress(OSError):
                self._proc.kill()
            self._proc.communicate()

    def __enter__(self) -> "AudioEncoder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()


def mux_audio(video: Path, audio: Path | None, out: Path, duration: float, encoded: Path | None = None) -> None:
    """Copy the video stream of `video` and encode `audio` (any format) to AAC into `out`.

    The audio is cut to `duration` seconds; `audio=None` writes a video with no audio track. `encoded`: that
    audio already encoded by an `AudioEncoder` of the same `duration`, copied instead of encoded again.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(video)]
    if encoded is not None:
        cmd += ["-i", str(encoded), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "copy", "-t", f"{duration:.6f}"]
    elif audio is not None:
        cmd += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0", *AAC_ARGS, "-t", f"{duration:.6f}"]
    else:
        cmd += ["-map", "0:v:0"]
    cmd += ["-c:v", "copy", "-movflags", "+faststart", str(out)]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to mux {out}: {_short(proc.stderr.decode(errors='replace'))}")


@contextlib.contextmanager
def muxable_audio(audio: Path | None, beside: Path, duration: float) -> Iterator[Path | None]:
    """Yield the file whose audio `mux_audio` should encode: `audio` itself, or a cleaned copy.

    Float PCM audio (WAV/CAF/... of 32/64-bit floats) can decode fine yet hold NaN, inf or values far
    past full scale, which the AAC encoder refuses (or turns into noise). Such audio is scanned (streamed,
    memory flat) and, when it holds any of these, rewritten as a 16-bit WAV beside `beside` with
    `clean_samples` applied (NaN/inf -> silence, the peak scaled to full scale); the copy is removed after.
    """
    if audio is None or _audio_codec(audio) not in FLOAT_PCM_CODECS:
        yield audio
        return
    channels, rate = _audio_layout(audio)
    bad, peak = 0, 0.0
    for chunk in _float_chunks(audio, duration, channels):
        finite = np.isfinite(chunk)
        bad += int(chunk.size - finite.sum())
        if finite.any():
            peak = max(peak, float(np.abs(chunk[finite]).max()))
    if bad == 0 and peak <= 1.0:
        yield audio
        return
    logger.info("%s: %d non-finite samples, peak %.3g; muxing a cleaned copy", audio, bad, peak)
    with temporary_path(beside, "audio", ".wav") as wav:
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            for chunk in _float_chunks(audio, duration, channels):
                w.writeframes((clean_samples(chunk, peak) * 32767.0).astype("<i2").tobytes())
        yield wav


def _audio_codec(path: Path) -> str | None:
    import av

    try:
        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            return stream.codec_context.name if stream is not None else None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, AttributeError):
        return None


def _audio_layout(path: Path) -> tuple[int, int]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            return max(1, int(stream.channels or 1)), max(1, int(stream.rate or 16000))
    except (av.error.FFmpegError, StopIteration, AttributeError, ValueError) as exc:
        raise InputError(f"{path} is not a readable audio file ({_short(exc)})") from None


def _float_chunks(path: Path, duration: float, channels: int, frames: int = 65536) -> Iterator[np.ndarray]:
    """The first `duration` s of `path`'s first audio stream as interleaved float32 chunks (native rate)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-vn", "-map", "0:a:0",
           "-t", f"{duration:.6f}", "-ac", str(channels), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    step = 4 * channels * frames
    try:
        while True:
            data = proc.stdout.read(step)
            if not data:
                break
            usable = len(data) - len(data) % (4 * channels)
            yield np.frombuffer(data[:usable], dtype="<f4")
    finally:
        proc.stdout.close()
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()


def _short(text: object, limit: int = 200) -> str:
    """The last non-empty line of an error text, shortened: for one-line error messages."""
    lines = [re.sub(r"\[Errno -?\d+\]\s*", "", line).strip() for line in str(text).splitlines() if line.strip()]
    line = lines[-1] if lines else str(text).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."
