"""Upload checks for the job API: size limits while receiving, file type by content, then a real parse.

The type comes from the bytes, never from the client's file name or content type: an image must be
a PNG, JPEG, WebP, BMP or TIFF that PIL opens (pixel count checked from the header against
`LIMITS.image_pixels`); audio and
video must start like a container ffmpeg demuxes safely (WAV, MP3, Ogg, FLAC, MP4/MOV/M4A, Matroska/
WebM, AIFF, AVI) — text formats such as playlists, which make ffmpeg open other files, never reach
it — and must hold an audio (or video) stream; expression keyframes must be UTF-8 JSON or YAML
that `documents.load_expression_file` accepts (size, depth, alias and keyframe limits).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InputError
from ..limits import LIMITS

Kind = Literal["image", "audio", "driving_video", "expression"]
KIND_LIMITS = {"image": 50 * 2**20, "expression": int(LIMITS.document_bytes.value)}  # bytes; media: the server's
CHUNK = 1 << 20


class UploadError(InputError):
    """An upload the API refuses; `status` is the HTTP status to answer (413 or 415)."""

    def __init__(self, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SavedUpload:
    """A checked upload in the job's folder."""

    kind: Kind  # which field it came from
    path: Path  # where it is stored


def save_upload(upload, kind: Kind, folder: Path, max_bytes: int) -> SavedUpload:
    """Copy an UploadFile into `folder`, refusing it once it passes the size limit; then check it.

    Blocking (file I/O, media probing): call it from a worker thread, not the event loop.
    """
    limit = min(max_bytes, KIND_LIMITS.get(kind, max_bytes))
    tmp = folder / f"{kind}.upload"
    size = 0
    with open(tmp, "wb") as f:
        while chunk := upload.file.read(CHUNK):
            size += len(chunk)
            if size > limit:
                f.close()
                tmp.unlink()
                raise UploadError(f"{kind} upload is over the {limit / 2**20:g} MiB limit", status=413)
            f.write(chunk)
    if size == 0:
        tmp.unlink()
        raise UploadError(f"{kind} upload is empty", status=422)
    try:
        suffix = check_file(tmp, kind)
    except InputError as exc:
        tmp.unlink()
        raise UploadError(str(exc), status=getattr(exc, "status", 415)) from None
    path = tmp.rename(folder / f"{kind}{suffix}")
    return SavedUpload(kind, path)


_MEDIA_MAGIC = (
    (0, b"RIFF", ".wav"), (0, b"ID3", ".mp3"), (0, b"OggS", ".ogg"), (0, b"fLaC", ".flac"),
    (4, b"ftyp", ".mp4"), (0, b"\x1a\x45\xdf\xa3", ".mkv"), (0, b"FORM", ".aiff"),
)


def _media_suffix(head: bytes) -> str | None:
    for offset, magic, suffix in _MEDIA_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            if magic == b"RIFF" and head[8:12] == b"AVI ":
                return ".avi"
            return suffix
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame header
        return ".mp3"
    return None


def check_file(path: Path, kind: Kind) -> str:
    """Check an uploaded file by content; return the file suffix it should carry. Raises InputError."""
    with open(path, "rb") as f:
        head = f.read(64)
    if kind == "image":
        return _check_image(path)
    if kind == "expression":
        return _check_expression(path)
    suffix = _media_suffix(head)
    if suffix is None:
        raise InputError(f"{kind} upload is not a recognised media file (WAV, MP3, Ogg, FLAC, MP4/M4A/MOV, "
                         "Matroska/WebM, AIFF or AVI)")
    import av

    want = "audio" if kind == "audio" else "video"
    try:
        with av.open(str(path)) as container:
            if not any(s.type == want for s in container.streams):
                raise InputError(f"{kind} upload has no {want} stream")
    except av.error.FFmpegError:
        raise InputError(f"{kind} upload is a damaged or unreadable media file") from None
    return suffix


def _check_image(path: Path) -> str:
    from PIL import Image

    from ..images import open_image

    formats = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
    try:
        with open_image(path, "image upload") as img:  # pixel limit from the header, before decoding
            fmt = img.format
            if fmt not in formats:
                raise InputError(f"image upload is a {str(fmt)[:20]} image; send PNG, JPEG, WebP, BMP or TIFF")
            img.verify()
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), "image upload")) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InputError("image upload is a damaged image") from None
    return formats[fmt]


def _check_expression(path: Path) -> str:
    from ..documents import load_expression_file

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("expression upload is not UTF-8 text (send JSON or YAML keyframes)") from None
    try:
        json.loads(text)
        suffix = ".json"
    except (ValueError, RecursionError):
        suffix = ".yaml"
    probe = path.with_suffix(suffix)
    path.rename(probe)
    try:
        load_expression_file(probe, LIMITS.max_duration.value)
    except InputError as exc:
        detail = str(exc).replace(f"--expression {probe}", "").replace(str(probe), "").lstrip(": ").strip()
        raise InputError(f"expression upload: {detail[:200]}") from None
    finally:
        probe.rename(path)
    return suffix
