"""Seeded damage of audio files: probe, decode and mux preparation give a result or an InputError."""

from __future__ import annotations

import random
import subprocess

import numpy as np
import pytest

from portrait_studio import media
from portrait_studio.errors import InputError

from .hardening_utils import short_audio
from .test_damaged_inputs import damage


@pytest.mark.parametrize("ext", ["m4a", "wav", "mp3"])
def test_damaged_audio_is_decoded_or_refused(tmp_path, ext):
    wav = short_audio(tmp_path / "a.wav", 0.4)
    source = tmp_path / f"s.{ext}"
    if ext != "wav":
        subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), str(source)], check=True)
    else:
        source = wav
    rng, path = random.Random(ext), tmp_path / f"x.{ext}"
    blob = source.read_bytes()
    for _ in range(40):
        path.write_bytes(damage(blob, rng)[0])
        try:
            media.probe_audio(path)
            samples = media.load_audio(path, 16000, max_duration=600)
            assert np.isfinite(samples).all() and np.abs(samples).max() <= 1
            with media.muxable_audio(path, tmp_path / "o.mp4", 0.4):
                pass
        except InputError as exc:
            assert "\n" not in str(exc)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"a.wav", source.name, path.name})  # no litter


def test_truncated_m4a_is_refused_not_an_internal_error(tmp_path):
    """An .m4a cut inside its index once gave an audio stream without a rate (AttributeError)."""
    wav = short_audio(tmp_path / "a.wav", 0.4)
    source = tmp_path / "s.m4a"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), str(source)], check=True)
    blob, path = source.read_bytes(), tmp_path / "x.m4a"
    for n in range(int(len(blob) * 0.8), len(blob), 7):
        path.write_bytes(blob[:n])
        try:
            media.probe_audio(path)
        except InputError:
            pass
