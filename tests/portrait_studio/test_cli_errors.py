"""Every bad input fails cleanly: exit 2, one `error: ...` line on stderr, nothing at the output path."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from portrait_studio import cli

from .media_utils import make_audio


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_path):
    """The first 0.6 s of the bundled speech (keeps renders short)."""
    from portrait_studio.media import ffmpeg_exe

    out = tmp_path_factory.mktemp("audio") / "short.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_path), "-t", "0.6", str(out)], check=True)
    return out


def run_cli(capsys, *args):
    code = cli.main(["render", *map(str, args)])
    err = capsys.readouterr().err
    return code, err


def assert_clean_failure(code, err, out_path, pattern):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert pattern.lower() in lines[0].lower(), lines[0]
    assert not out_path.exists()
    assert not [p for p in out_path.parent.iterdir() if p.name.startswith(f".{out_path.stem}.")]


def _image(tmp_path, array, name="img.png"):
    path = tmp_path / name
    Image.fromarray(array).save(path)
    return path


def test_missing_image(tmp_path, capsys, short_speech):
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", tmp_path / "nope.png", "--audio", short_speech, "-o", out)
    assert_clean_failure(code, err, out, "image file not found")


def test_not_an_image(tmp_path, capsys, short_speech):
    path = tmp_path / "text.png"
    path.write_text("this is not a picture")
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", path, "--audio", short_speech, "-o", out)
    assert_clean_failure(code, err, out, "not an image")


def test_corrupt_image(tmp_path, capsys, short_speech, portrait_path):
    path = tmp_path / "broken.png"
    path.write_bytes(portrait_path.read_bytes()[:5000])
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", path, "--audio", short_speech, "-o", out)
    assert_clean_failure(code, err, out, "corrupt")


def test_no_face(tmp_path, capsys, short_speech):
    rng = np.random.default_rng(0)
    path = _image(tmp_path, rng.integers(0, 255, (384, 384, 3), dtype=np.uint8))
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", path, "--audio", short_speech, "-o", out)
    assert_clean_failure(code, err, out, "no face")


def test_face_too_small(tmp_path, capsys, short_speech, portrait_path):
    portrait = Image.open(portrait_path).convert("RGB").resize((80, 80), Image.LANCZOS)
    canvas = Image.new("RGB", (1024, 1024), (128, 128, 128))
    canvas.paste(portrait, (472, 472))
    path = tmp_path / "tiny.png"
    canvas.save(path)
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", path, "--audio", short_speech, "-o", out)
    assert code == 2 and ("too small" in err or "no face" in err), err
    assert_clean_failure(code, err, out, "")


@pytest.mark.parametrize("kind", ["image-as-audio", "corrupt", "zero-length", "missing"])
def test_bad_audio(tmp_path, capsys, portrait_path, kind):
    out = tmp_path / "out.mp4"
    if kind == "image-as-audio":
        audio, pattern = portrait_path, "audio"
    elif kind == "corrupt":
        audio = tmp_path / "c.wav"
        audio.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
        pattern = "audio"
    elif kind == "zero-length":
        audio, pattern = make_audio(tmp_path / "z.wav", seconds=0.0), "zero-length"
    else:
        audio, pattern = tmp_path / "missing.wav", "not found"
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", audio, "-o", out)
    assert_clean_failure(code, err, out, pattern)


def test_audio_over_max_duration(tmp_path, capsys, portrait_path):
    audio = make_audio(tmp_path / "long.wav", seconds=3.0)
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", audio, "-o", out, "--max-duration", "2")
    assert_clean_failure(code, err, out, "max-duration")


def test_unwritable_output_directory(capsys, portrait_path, short_speech):
    from pathlib import Path

    out = Path("/proc/portrait-out.mp4")  # not writable even for root
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", short_speech, "-o", out)
    assert code == 2 and err.startswith("error: ") and "not writable" in err and err.count("\n") == 1


def test_missing_output_directory(tmp_path, capsys, portrait_path, short_speech):
    out = tmp_path / "no" / "such" / "out.mp4"
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", short_speech, "-o", out)
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


def test_unsupported_output_extension(tmp_path, capsys, portrait_path, short_speech):
    out = tmp_path / "out.gif"
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", short_speech, "-o", out)
    assert_clean_failure(code, err, out, "unsupported output extension")


@pytest.mark.parametrize("flag,value,pattern", [
    ("--fps", "0", "--fps"), ("--size", "10", "--size"), ("--head-motion", "-1", "--head-motion"),
    ("--expressiveness", "nan", "--expressiveness"), ("--trajectory", "missing.json", "not found"),
])
def test_bad_option_values(tmp_path, capsys, portrait_path, short_speech, flag, value, pattern):
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", short_speech, "-o", out, flag, value)
    assert_clean_failure(code, err, out, pattern)


def test_bad_trajectory_file(tmp_path, capsys, portrait_path, short_speech):
    traj = tmp_path / "t.json"
    traj.write_text('{"trajectories": [[[10, 10], [9999, 10]]]}')
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", short_speech, "-o", out, "--trajectory", traj)
    assert_clean_failure(code, err, out, "trajectory")


def test_mofa_without_checkpoints_names_what_is_missing(tmp_path, capsys, portrait_path, short_speech):
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--image", portrait_path, "--audio", short_speech, "-o", out,
                        "--engine", "mofa", "--ckpt-dir", tmp_path / "empty")
    assert_clean_failure(code, err, out, "missing")
    assert "diffusion_pytorch_model" in err or "model_index.json" in err


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["render", "--image", "x.png"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_real_process_has_no_traceback(tmp_path, short_speech):
    out = tmp_path / "out.mp4"
    proc = subprocess.run([sys.executable, "-m", "portrait_studio", "render", "--image", str(tmp_path / "x.png"),
                           "--audio", str(short_speech), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert not out.exists()
