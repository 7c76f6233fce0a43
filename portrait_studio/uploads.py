"""Checking files people upload (studio, job API) before anything runs: type by content, size, duration.

Each `save_*` takes the uploaded bytes, refuses what is not acceptable with a one-line InputError that
names the upload by its role (never by a server path), and writes the file into the caller's folder
(atomically) under a fixed name, so user-chosen names never reach the file system.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import InputError

MB = 1024 * 1024
IMAGE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}  # PIL format -> file suffix
LIMITS_MB = {"image": 20, "audio": 50, "video": 200, "keyframes": 1, "mask": 20, "landmarks": 50}


@dataclass(frozen=True)
class SavedUpload:
    """An upload that passed its checks."""

    path: Path  # where it was written (inside the caller's folder)
    duration: float | None = None  # seconds, for audio and video
    size: tuple[int, int] | None = None  # (width, height) for images


def _check_size(data: bytes, role: str, kind: str) -> None:
    limit = LIMITS_MB[kind]
    if len(data) == 0:
        raise InputError(f"the {role} is an empty file")
    if len(data) > limit * MB:
        raise InputError(f"the {role} is {len(data) / MB:.1f} MB; the limit is {limit} MB")


def _write(data: bytes, folder: Path, name: str) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    target = folder / name
    os.replace(tmp, target)
    return target


def save_image(data: bytes, folder: Path, stem: str = "portrait", role: str = "photo") -> SavedUpload:
    """A JPEG, PNG or WebP photo (by its content, not its name), at most 20 MB and 400 MP."""
    _check_size(data, role, "image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            size = img.size
            if fmt in IMAGE_FORMATS:
                img.load()  # a truncated or corrupt file fails here
    except Image.DecompressionBombError:
        raise InputError(f"the {role} has too many pixels (over 400 megapixels)") from None
    except UnidentifiedImageError:
        raise InputError(f"the {role} is not an image (JPEG, PNG or WebP)") from None
    except (OSError, SyntaxError, ValueError):
        raise InputError(f"the {role} is a corrupt or truncated image") from None
    if fmt not in IMAGE_FORMATS:
        raise InputError(f"the {role} is a {str(fmt)[:10]} image; use JPEG, PNG or WebP")
    if min(size) < 64:
        raise InputError(f"the {role} is only {size[0]}x{size[1]} pixels; a portrait needs at least 64x64")
    return SavedUpload(_write(data, folder, stem + IMAGE_FORMATS[fmt]), size=size)


def _probe(path: Path, want_video: bool) -> tuple[float, bool]:
    """(duration, has audio) of a media file; raises InputError when it is not readable media."""
    import av

    from .media import _stream_duration

    with av.open(str(path)) as container:
        if want_video:
            if not container.streams.video:
                raise InputError("no video stream")
            stream = container.streams.video[0]
        else:
            if not container.streams.audio:
                raise InputError("no audio stream")
            stream = container.streams.audio[0]
        return _stream_duration(container, stream), bool(container.streams.audio)


def _save_media(data: bytes, folder: Path, stem: str, role: str, kind: str, max_duration: float) -> SavedUpload:
    import av

    _check_size(data, role, kind)
    path = _write(data, folder, stem)
    try:
        duration, _ = _probe(path, want_video=kind == "video")
    except InputError as exc:
        path.unlink(missing_ok=True)
        raise InputError(f"the {role} has {exc}") from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError, ZeroDivisionError):
        path.unlink(missing_ok=True)
        raise InputError(f"the {role} is not a readable {kind} file") from None
    if not duration > 0:
        path.unlink(missing_ok=True)
        raise InputError(f"the {role} is empty (no {kind} in it)")
    if duration > max_duration:
        path.unlink(missing_ok=True)
        raise InputError(f"the {role} is {duration:.1f} s long; the limit is {max_duration:g} s")
    return SavedUpload(path, duration=duration)


def save_audio(data: bytes, folder: Path, max_duration: float, stem: str = "speech", role: str = "voice recording"
               ) -> SavedUpload:
    """Speech in any format ffmpeg reads (WAV, MP3, M4A, OGG, FLAC, WebM ...), checked by decoding its
    headers, at most 50 MB and `max_duration` seconds."""
    return _save_media(data, folder, stem + ".media", role, "audio", max_duration)


def save_video(data: bytes, folder: Path, max_duration: float, stem: str = "driving", role: str = "driving video"
               ) -> SavedUpload:
    """A driving video (MP4, MOV, WebM, MKV ...), at most 200 MB and `max_duration` seconds."""
    return _save_media(data, folder, stem + ".media", role, "video", max_duration)


def save_small(data: bytes, folder: Path, name: str, role: str, kind: str = "keyframes") -> SavedUpload:
    """A small file checked by its reader later (keyframe JSON): only the size is checked here."""
    _check_size(data, role, kind)
    return SavedUpload(_write(data, folder, name))
