"""Uploads are checked by content, size and duration before anything runs; messages are one line."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from portrait_studio import uploads
from portrait_studio.errors import InputError

from .media_utils import make_audio


def _image(fmt: str, size=(96, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_photos_are_typed_by_content(tmp_path, fmt, suffix):
    saved = uploads.save_image(_image(fmt), tmp_path)
    assert saved.path == tmp_path / f"portrait{suffix}" and saved.size == (96, 80)


@pytest.mark.parametrize("data, words", [
    (b"", "is an empty file"),
    (b"GIF89a not really", "not an image"),
    (_image("PNG")[:60], "corrupt or truncated"),
    (_image("GIF"), "is a GIF image; use JPEG, PNG or WebP"),
    (_image("PNG", (40, 30)), "only 40x30 pixels"),
])
def test_bad_photos(tmp_path, data, words):
    with pytest.raises(InputError, match=None) as err:
        uploads.save_image(data, tmp_path)
    assert words in str(err.value) and "\n" not in str(err.value) and str(tmp_path) not in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_size_limit(tmp_path, monkeypatch):
    monkeypatch.setitem(uploads.LIMITS_MB, "image", 0.0001)
    with pytest.raises(InputError, match="MB; the limit is"):
        uploads.save_image(_image("PNG"), tmp_path)


def test_audio_duration_and_content(tmp_path):
    good = make_audio(tmp_path / "a.mp3", seconds=1.0).read_bytes()
    saved = uploads.save_audio(good, tmp_path / "s", max_duration=5)
    assert abs(saved.duration - 1.0) < 0.1 and saved.path.parent == tmp_path / "s"
    with pytest.raises(InputError, match=r"is 1\.0 s long; the limit is 0\.5 s"):
        uploads.save_audio(good, tmp_path / "t", max_duration=0.5)
    with pytest.raises(InputError, match="not a readable audio file"):
        uploads.save_audio(b"RIFF....WAVEjunk" * 10, tmp_path / "u", max_duration=5)
    assert not any((tmp_path / d).exists() and list((tmp_path / d).iterdir()) for d in ("t", "u"))


def test_video_needs_a_video_stream(tmp_path):
    audio_only = make_audio(tmp_path / "a.m4a", seconds=0.5).read_bytes()
    with pytest.raises(InputError, match="the driving video has no video stream"):
        uploads.save_video(audio_only, tmp_path / "v", max_duration=5)
