"""The CLI never destroys a user's file, bounds every driver, and answers bad input with exit 2 + one line."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from .hardening_utils import (
    ROOT,
    SIZE,
    assert_one_error,
    error_lines,
    face_crop,
    fingerprint,
    run,
    short_audio,
    trajectory,
    video_frames,
)
from .media_utils import make_audio, probe_video


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kit")
    return {"image": face_crop(folder / "face.png"), "audio": short_audio(folder / "speech.wav"),
            "video": ROOT / "tests" / "fixtures" / "driving_carphone.mp4"}


def _render(capsys, kit, out, *extra, audio=True):
    args = ["render", "--image", kit["image"], "-o", out, "--size", SIZE, "--engine", "warp", *extra]
    if audio:
        args += ["--audio", kit["audio"]]
    return run(capsys, *args)


# ---------------------------------------------------------------- 1. no file of the user's is destroyed
def test_output_equal_to_driving_video_is_refused(tmp_path, capsys, kit):
    video = shutil.copy(kit["video"], tmp_path / "drive.mp4")
    before = fingerprint([video])
    for out in (video, tmp_path / "." / "drive.mp4"):
        code, _, err = _render(capsys, kit, out, "--driving-video", video, audio=False)
        assert_one_error(code, err, "same file as the input")
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    code, _, err = _render(capsys, kit, link, "--driving-video", video, audio=False)
    assert_one_error(code, err, "same file")
    assert fingerprint([video]) == before


def test_output_equal_to_an_audio_video_is_refused(tmp_path, capsys, kit):
    with_sound = make_audio(tmp_path / "voice.mp4", seconds=0.5)
    before = fingerprint([with_sound])
    code, _, err = run(capsys, "render", "--image", kit["image"], "--audio", with_sound, "-o", with_sound,
                       "--size", SIZE, "--engine", "warp")
    assert_one_error(code, err, "same file")
    os.link(with_sound, tmp_path / "hard.mp4")
    code, _, err = run(capsys, "render", "--image", kit["image"], "--audio", with_sound, "-o", tmp_path / "hard.mp4",
                       "--size", SIZE, "--engine", "warp")
    assert_one_error(code, err, "same file")
    assert fingerprint([with_sound]) == before


def test_side_outputs_never_overwrite_inputs(tmp_path, capsys, kit):
    image = shutil.copy(kit["image"], tmp_path / "face.png")
    before = fingerprint([image])
    code, _, err = _render(capsys, kit | {"image": image}, tmp_path / "o.mp4", "--save-landmarks", image)
    assert_one_error(code, err, "--save-landmarks extension")
    # a track rendered and saved onto itself
    track = tmp_path / "t.npz"
    assert run(capsys, "landmarks", "--image", kit["image"], "--audio", kit["audio"], "-o", track,
               "--size", SIZE)[0] == 0
    tracked = fingerprint([track])
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--landmarks", track, "--save-landmarks", track)
    assert_one_error(code, err, "--save-landmarks")
    # --debug-dir at the folder of a driving video named flow.mp4
    drive = tmp_path / "clips"
    drive.mkdir()
    flow = shutil.copy(kit["video"], drive / "flow.mp4")
    flowed = fingerprint([flow])
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--driving-video", flow, "--debug-dir", drive, audio=False)
    assert_one_error(code, err, "same file")
    # landmarks -o onto the portrait
    code, _, err = run(capsys, "landmarks", "--image", image, "--audio", kit["audio"], "-o", image)
    assert_one_error(code, err, ".npz")
    assert fingerprint([image]) == before and fingerprint([track]) == tracked and fingerprint([flow]) == flowed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "face.png", "t.npz"]


def test_side_outputs_are_atomic_and_committed_with_the_video(tmp_path, capsys, kit):
    out, lm, debug = tmp_path / "o.mp4", tmp_path / "o.npz", tmp_path / "debug"
    bad_keys = tmp_path / "keys.json"
    bad_keys.write_text(json.dumps({"keyframes": [{"t": 0, "jawOpen": 7}]}))  # out of range: exit 2
    code, _, err = _render(capsys, kit, out, "--save-landmarks", lm, "--debug-dir", debug, "--expression", bad_keys)
    assert_one_error(code, err, "jawOpen")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]
    code, _, err = _render(capsys, kit, out, "--save-landmarks", lm, "--debug-dir", debug)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["debug", "keys.json", "o.mp4", "o.npz"]
    assert sorted(p.name for p in debug.iterdir()) == ["flow.mp4", "landmarks.mp4"]
    assert video_frames(debug / "flow.mp4") == video_frames(out) == np.load(lm)["points"].shape[0]


def test_output_modes(tmp_path, capsys, kit):
    old = os.umask(0o022)
    try:
        out = tmp_path / "o.mp4"
        assert _render(capsys, kit, out)[0] == 0
        assert os.stat(out).st_mode & 0o777 == 0o644
        os.chmod(out, 0o640)
        assert _render(capsys, kit, out)[0] == 0
        assert os.stat(out).st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


# ---------------------------------------------------------------- 3. bounded resources, every driver
def test_keyframe_duration_is_limited(tmp_path, capsys, kit):
    keys = tmp_path / "late.json"
    keys.write_text(json.dumps({"keyframes": [{"t": 0}, {"t": 1e9, "jawOpen": 1}]}))
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--expression", keys, audio=False)
    assert_one_error(code, err, "over the --max-duration limit of 600 s")
    keys.write_text(json.dumps({"keyframes": [{"t": 0}, {"t": 3, "jawOpen": 1}]}))
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--expression", keys, "--max-duration", "2", audio=False)
    assert_one_error(code, err, "lasts 3.0 s")


def test_landmark_track_duration_and_fps_are_limited(tmp_path, capsys, kit):
    track = tmp_path / "t.npz"
    np.savez(track, points=np.zeros((100, 68, 2), np.float32), reference=np.zeros((68, 2), np.float32),
             fps=np.float64(25))
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--landmarks", track, "--max-duration", "2", audio=False)
    assert_one_error(code, err, "lasts 4.0 s")
    np.savez(track, points=np.zeros((10, 68, 2), np.float32), reference=np.zeros((68, 2), np.float32),
             fps=np.float64(100000))
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--landmarks", track, audio=False)
    assert_one_error(code, err, "fps range")


def test_transcript_is_limited(tmp_path, capsys, kit):
    text = tmp_path / "said.txt"
    text.write_text("word " * 100_000)
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--transcript", text)
    assert_one_error(code, err, "over the 100,000 characters limit")


def test_driving_video_frame_rate_is_limited(tmp_path, capsys, kit):
    import subprocess

    from portrait_studio.media import ffmpeg_exe

    fast = tmp_path / "fast.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=400",
                    "-t", "0.5", "-pix_fmt", "yuv420p", str(fast)], check=True)
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--driving-video", fast, audio=False)
    assert_one_error(code, err, "400 fps, over the 240 fps limit")


def test_max_duration_itself_is_limited(tmp_path, capsys, kit):
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--max-duration", "1e9")
    assert_one_error(code, err, "--max-duration must be between 0 and 3600")


def test_frame_long_side_is_limited(tmp_path, capsys, kit):
    strip = tmp_path / "strip.png"
    Image.new("RGB", (3000, 100), (90, 90, 90)).save(strip)
    code, _, err = run(capsys, "render", "--image", strip, "--audio", kit["audio"], "-o", tmp_path / "o.mp4",
                       "--size", "256", "--engine", "warp")
    assert_one_error(code, err, "7680x256")
    assert "4,096 pixels limit (frame long side)" in err


def test_too_many_trajectories(tmp_path, capsys, kit):
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"trajectories": [[[10, 10], [12, 12]]] * 2000}))
    code, _, err = _render(capsys, kit, tmp_path / "o.mp4", "--trajectory", many)
    assert_one_error(code, err, "2,000 trajectories, over the 32 trajectories limit")


# ---------------------------------------------------------------- 4. one line, whatever the engine choice
def test_auto_engine_note_never_precedes_the_error(tmp_path, capsys, kit):
    code, _, err = run(capsys, "render", "--image", kit["image"], "--audio", kit["audio"], "-o", tmp_path / "o.mp4",
                       "--size", SIZE, "--trajectory", tmp_path / "missing.json")
    assert_one_error(code, err, "not found")
    bad = trajectory(tmp_path / "t.json")
    bad.write_text(bad.read_text().replace("250", "99999"))  # outside the photo: found after the face
    code, _, err = run(capsys, "render", "--image", kit["image"], "--audio", kit["audio"], "-o", tmp_path / "o.mp4",
                       "--size", SIZE, "--trajectory", bad)
    assert_one_error(code, err, "outside")
    code, _, err = run(capsys, "render", "--image", kit["image"], "--audio", kit["audio"], "-o", tmp_path / "o.mp4",
                       "--size", SIZE)
    assert code == 0 and error_lines(err) and error_lines(err)[0].startswith("engine warp (auto")


def test_nan_and_absurd_audio_is_cleaned_before_the_mux(tmp_path, capsys, kit):
    rate = 16000
    t = np.arange(int(0.6 * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    samples[100:400] = np.nan
    samples[500:600] = np.inf
    samples[700] = -1e30
    samples[2000:4000] *= 1e6
    wav = tmp_path / "broken.wav"
    wavfile.write(wav, rate, samples)
    out = tmp_path / "o.mp4"
    code, _, err = run(capsys, "render", "--image", kit["image"], "--audio", wav, "-o", out, "--size", SIZE,
                       "--engine", "warp")
    assert code == 0, err
    probe = probe_video(out)
    assert probe.audio_codec == "aac" and probe.frames == 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.wav", "o.mp4"]


def test_thumbnail_face_is_measured_in_its_own_pixels(tmp_path, capsys, kit):
    thumb = tmp_path / "thumb.png"
    Image.open(kit["image"]).resize((48, 48), Image.LANCZOS).save(thumb)
    code, _, err = run(capsys, "render", "--image", thumb, "--audio", kit["audio"], "-o", tmp_path / "o.mp4",
                       "--size", "256", "--engine", "warp")
    line = assert_one_error(code, err, "too small")
    assert "48x48 photo" in line and "at least 24 px" in line and "256x256 frame" in line


def test_a_render_stopped_mid_way_leaves_no_side_output(tmp_path, kit):
    """Cancelled while frames are written: no video, no track, no debug videos, no debug folder it made."""
    import threading

    from portrait_studio import RenderCancelled, RenderOptions, Studio

    cancel = threading.Event()

    def progress(stage, done, total):
        if stage == "render" and done == 3:
            cancel.set()

    lm, debug = tmp_path / "o.npz", tmp_path / "debug"
    lm.write_bytes(b"an older track")
    options = RenderOptions(engine="warp", size=SIZE, save_landmarks=lm, debug_dir=debug)
    with Studio(options) as studio, pytest.raises(RenderCancelled):
        studio.render(kit["image"], kit["audio"], tmp_path / "o.mp4", progress=progress, cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.npz"] and lm.read_bytes() == b"an older track"
