"""Batch and job-API test helpers. Short inputs: the bundled portrait, two cuts of the bundled speech, a corrupt file."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portrait_studio.media import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[2]
FAST = {"engine": "warp", "size": 224, "fps": 15, "language": "acoustic"}  # the quickest real render


@pytest.fixture(scope="session")
def clips(tmp_path_factory, portrait_path, speech_path) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    shutil.copy(portrait_path, folder / "face.png")
    for name, start, length in (("talk1.wav", 0.0, 1.2), ("talk2.wav", 2.0, 1.0)):
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", str(start), "-i", str(speech_path),
                        "-t", str(length), str(folder / name)], check=True)
    shutil.copy(speech_path, folder / "talk_long.wav")  # 7.1 s: a render that is surely still running
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + os.urandom(300))
    return folder


def batch_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "portrait_studio", "batch", *map(str, args)]


def batch_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def tree(folder: Path) -> list[str]:
    """Every file under `folder`, relative, sorted (the batch's own lock and manifest excluded)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.parent.name != "manifest" and p.name != "lock")
