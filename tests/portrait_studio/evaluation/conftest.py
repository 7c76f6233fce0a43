"""One short warp render of the bundled example (3 s at 256 px), its track and audio, shared by the tests."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from portrait_studio import media
from portrait_studio.evaluation import measure_frames
from portrait_studio.options import RenderOptions
from portrait_studio.studio import Studio

SECONDS = 3.0
SIZE = 256
RATE = 16000


def write_wav(samples: np.ndarray, path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def render(image: Path, audio: Path, out: Path, track: Path | None = None) -> Path:
    with Studio(RenderOptions(engine="warp", size=SIZE, save_landmarks=track)) as studio:
        studio.render(image, audio, out)
    return out


@dataclass(frozen=True)
class Clip:
    video: Path  # the render
    track: Path  # its landmark track (.npz)
    speech: np.ndarray  # float32 [N] the audio it speaks, at RATE
    audio: Path  # that audio as a wav
    work: Path  # a directory for derived files


@pytest.fixture(scope="session")
def clip(tmp_path_factory, portrait_path, speech_path) -> Clip:
    work = tmp_path_factory.mktemp("evaluate")
    speech = media.load_audio(speech_path, RATE)[: int(SECONDS * RATE)]
    audio = write_wav(speech, work / "speech.wav")
    video = render(portrait_path, audio, work / "clip.mp4", work / "clip.npz")
    return Clip(video=video, track=work / "clip.npz", speech=speech, audio=audio, work=work)


@pytest.fixture(scope="session")
def clip_measures(clip):
    return measure_frames(clip.video)
