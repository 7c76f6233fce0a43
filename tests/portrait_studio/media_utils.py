"""Test helpers: make audio files with the bundled ffmpeg, and inspect videos with PyAV."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from portrait_studio.media import ffmpeg_exe


def make_audio(path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, silent: bool = False) -> Path:
    """A tone (or silence) in whatever format `path`'s extension names."""
    src = f"anullsrc=r={rate}:cl={'mono' if channels == 1 else 'stereo'}" if silent else f"sine=frequency=220:sample_rate={rate}"
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-t", str(seconds),
           "-ac", str(channels), "-ar", str(rate), str(path)]
    subprocess.run(cmd, check=True)
    return path


@dataclass
class VideoProbe:
    video_codec: str | None
    audio_codec: str | None
    width: int
    height: int
    pix_fmt: str | None
    frames: int
    duration: float  # container duration, seconds
    audio_duration: float | None


def probe_video(path: Path) -> VideoProbe:
    with av.open(str(path)) as c:
        v = next((s for s in c.streams if s.type == "video"), None)
        a = next((s for s in c.streams if s.type == "audio"), None)
        frames = sum(1 for _ in c.decode(video=0)) if v is not None else 0
        audio_duration = float(a.duration * a.time_base) if a is not None and a.duration else None
        return VideoProbe(
            video_codec=v.codec_context.name if v is not None else None,
            audio_codec=a.codec_context.name if a is not None else None,
            width=v.codec_context.width if v is not None else 0,
            height=v.codec_context.height if v is not None else 0,
            pix_fmt=v.codec_context.pix_fmt if v is not None else None,
            frames=frames,
            duration=c.duration / 1e6 if c.duration else 0.0,
            audio_duration=audio_duration,
        )


def read_frames(path: Path) -> np.ndarray:
    """All frames of a (short) video as uint8 [T, H, W, 3] RGB."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
