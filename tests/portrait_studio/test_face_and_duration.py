"""--face N (faces numbered left to right, default the largest) and --duration (the first seconds only)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from landmark_drivers import LandmarkTrack
from portrait_studio.cli import main

from .media_utils import probe_video


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory, portrait_path):
    """A small face on the left, a large one on the right."""
    head = Image.open(portrait_path).convert("RGB").crop((105, 5, 345, 245))
    canvas = Image.new("RGB", (800, 480), (200, 200, 200))
    canvas.paste(head, (20, 160))
    canvas.paste(head.resize((480, 480), Image.BICUBIC), (300, 0))
    path = tmp_path_factory.mktemp("faces") / "two.png"
    canvas.save(path)
    return path


def _track(tmp_path, photo, speech, *extra) -> LandmarkTrack:
    out = tmp_path / f"lm{len(extra)}{'_'.join(extra)}.npz"
    assert main(["landmarks", "--image", str(photo), "--audio", str(speech), "--size", "400", "--duration", "0.4",
                 "-o", str(out), *extra]) == 0
    return LandmarkTrack.load(out)


@pytest.mark.slow
def test_face_number_picks_left_to_right(tmp_path, two_faces, speech_path, capsys):
    default, first, second = (_track(tmp_path, two_faces, speech_path, *e) for e in ((), ("--face", "1"),
                                                                                   ("--face", "2")))
    width = 400 * 800 / 480
    assert first.reference[:, 0].max() < 0.4 * width < second.reference[:, 0].min()  # 1 = the leftmost
    assert np.allclose(default.reference, second.reference)  # default: the largest
    assert default.num_frames == 10  # --duration 0.4 at 25 fps
    out = tmp_path / "bad.npz"
    capsys.readouterr()
    code = main(["landmarks", "--image", str(two_faces), "--audio", str(speech_path), "--face", "3", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "numbered 1 to 2 from left to right" in err[0] and not out.exists()


@pytest.mark.slow
def test_duration_renders_the_first_seconds_with_their_audio(tmp_path, portrait_path, speech_path):
    out = tmp_path / "short.mp4"
    assert main(["render", "--image", str(portrait_path), "--audio", str(speech_path), "--engine", "warp",
                 "--size", "256", "--duration", "1.2", "-o", str(out)]) == 0
    probe = probe_video(out)
    assert probe.frames == 30 and abs(probe.audio_duration - 1.2) < 0.1


@pytest.mark.parametrize("flag, value, words", [("--duration", "0", "positive number of seconds"),
                                                ("--face", "0", "face number from 1")])
def test_bad_values_are_one_line(tmp_path, capsys, portrait_path, speech_path, flag, value, words):
    out = tmp_path / "x.mp4"
    code = main(["render", "--image", str(portrait_path), "--audio", str(speech_path), flag, value, "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0] and not out.exists()
