"""Helpers of the hardening tests: small valid inputs, the CLI promise, file fingerprints."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import av
from PIL import Image

from portrait_studio import cli
from portrait_studio.media import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[2]
# a face-tight crop of the bundled portrait: at --size 128 its eyes are still 24+ px apart
CROP = (136, 60, 436, 360)
SIZE = 128


def face_crop(path: Path) -> Path:
    Image.open(ROOT / "examples" / "portrait.png").convert("RGB").crop(CROP).save(path)
    return path


def short_audio(path: Path, seconds: float = 0.5) -> Path:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(ROOT / "examples" / "speech.wav"),
                    "-t", str(seconds), str(path)], check=True)
    return path


def keyframes(path: Path) -> Path:
    path.write_text(json.dumps({"interpolation": "smooth", "keyframes": [
        {"t": 0.0}, {"t": 0.3, "preset": "smile", "amount": 0.6, "yaw": 8}]}))
    return path


def trajectory(path: Path) -> Path:
    path.write_text(json.dumps({"trajectories": [[[20, 250], [40, 240]], [[280, 40]]]}))
    return path


def fingerprint(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths if Path(p).is_file()}


def run(capsys, *args) -> tuple[int, str, str]:
    """`portrait_studio` in-process: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def assert_one_error(code: int, err: str, pattern: str = "") -> str:
    lines = error_lines(err)
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in lines[0] and "Traceback" not in err
    assert pattern.lower() in lines[0].lower(), lines[0]
    return lines[0]


def video_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))
