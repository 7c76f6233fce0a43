"""`python -m portrait_studio evaluate`: table, JSON, plot; bad input exits 2 with one `error:` line."""

from __future__ import annotations

import json

import pytest

from portrait_studio import cli

pytestmark = pytest.mark.slow


def run(capsys, *args):
    code = cli.main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_two_videos_side_by_side_with_json_and_plot(clip, capsys, tmp_path, portrait_path):
    report, picture = tmp_path / "eval.json", tmp_path / "eval.png"
    code, out, err = run(capsys, clip.video, clip.video, "--landmarks", clip.track, "--image", portrait_path,
                         "--window", "1", "--json", report, "--plot", picture)
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header == ["clip.mp4", "clip.mp4"] and "lip sync ncc" in out and "drift ΔE2000 face (max)" in out
    results = json.loads(report.read_text())
    assert len(results) == 2 and results[0]["lipsync"] == results[1]["lipsync"]
    r = results[0]
    for key in ("ncc", "lag_frames"):
        assert isinstance(r["lipsync"][key], (int, float))
    assert "open_fraction" in r["silence"] and r["control"]["nme"] < 0.05
    assert r["drift"]["window_s"] == 1.0 and len(r["drift"]["color_de2000"]) == len(r["drift"]["cpbd"]) == 3
    assert r["background"]["mad_mean"] is not None and r["jitter"]["max_jump"] is not None
    assert r["file"]["video_codec"] == "h264" and r["file"]["fps"] == 25.0 and r["file"]["duration"] > 2.9
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000
    assert not list(tmp_path.glob(".*part*"))


def test_help_defines_every_measure(capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for word in ("lipsync", "silence", "control", "drift", "CIEDE2000", "CPBD", "background", "jitter", "file"):
        assert word in text


@pytest.mark.parametrize("make_args, message", [
    (lambda c, t: [t / "missing.mp4"], "video file not found"),
    (lambda c, t: [t / "clip.txt"], "not a video file"),
    (lambda c, t: [t / "fake.mp4"], "not a readable video"),
    (lambda c, t: [c.video, "--driving-video", c.video], "--driving-video needs --image"),
    (lambda c, t: [c.video, "--json", t / "out.txt"], "unsupported --json extension"),
    (lambda c, t: [c.video, "--image", t / "me.png", "--plot", t / "me.png"], "is the same file as the input"),
    (lambda c, t: [c.video, "--plot", t / "nodir" / "p.png"], "--plot directory does not exist"),
    (lambda c, t: [c.video, "--audio", t / "none.wav"], "--audio file not found"),
    (lambda c, t: [c.video, "--landmarks", c.audio], "saved landmark track"),
    (lambda c, t: [c.video, "--max-duration", "1"], "over the 1 s limit"),
    (lambda c, t: [c.video, "--max-duration", "1e9"], "--max-duration must be within"),
    (lambda c, t: [c.video, "--window", "0"], "--window must be within"),
])
def test_bad_input_exits_2_with_one_line(clip, capsys, tmp_path, make_args, message):
    (tmp_path / "clip.txt").write_text("x")
    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    (tmp_path / "me.png").write_bytes(b"a portrait")
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    code, out, err = run(capsys, *make_args(clip, tmp_path))
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, nothing overwritten


def test_readme_quotes_the_help_text():
    from portrait_studio.evaluation.definitions import MEASURES

    from ...conftest import ROOT

    assert MEASURES in (ROOT / "README.md").read_text(encoding="utf-8")
