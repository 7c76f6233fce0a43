"""Every driver through the app's entry point (warp engine, CPU), and bad driver input."""

import json

import numpy as np
import pytest

from landmark_drivers import LandmarkTrack
from portrait_studio import cli

from .media_utils import make_audio, probe_video, read_frames
from .test_cli_errors import assert_clean_failure
from .test_render_e2e import mouth_aperture

pytestmark = pytest.mark.slow


def driving_measures(frames):
    """Mouth aperture and horizontal nose offset (nose tip vs eye-corner midpoint, / eye distance)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from landmark_drivers.face_analysis import default_model_path

    opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(default_model_path())),
                                        num_faces=1)
    mouth, nose = [], []
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        for f in frames:
            r = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(f)))
            p = np.array([(q.x * f.shape[1], q.y * f.shape[0]) for q in r.face_landmarks[0]])
            eye = np.linalg.norm(p[33] - p[263])
            mouth.append(np.linalg.norm(p[13] - p[14]) / eye)
            nose.append((p[1, 0] - (p[33, 0] + p[263, 0]) / 2) / eye)
    return np.array(mouth), np.array(nose)


def test_driving_video_puppets_the_portrait(tmp_path, fixtures, portrait_path):
    video = fixtures / "driving_carphone.mp4"
    out = tmp_path / "puppet.mp4"
    assert cli.main(["render", "--image", str(portrait_path), "--driving-video", str(video), "-o", str(out),
                     "--engine", "warp"]) == 0
    p = probe_video(out)
    src = probe_video(video)
    assert p.audio_codec is None  # the carphone clip is silent and no --audio was given
    assert p.frames == round(src.duration * 25)
    rendered = read_frames(out)
    driving = read_frames(video)
    # compare on the driving clip's own timeline: output frame k shows time k/25 s
    times = np.arange(len(rendered)) / 25.0
    src_idx = np.minimum((times * (src.frames / src.duration)).round().astype(int), len(driving) - 1)
    d_mouth, d_nose = driving_measures(driving[src_idx])
    r_mouth, r_nose = driving_measures(rendered)
    mouth_r = np.corrcoef(d_mouth, r_mouth)[0, 1]
    nose_r = np.corrcoef(d_nose - d_nose[0], r_nose - r_nose[0])[0, 1]
    print(f"carphone: mouth r={mouth_r:.3f}, head-turn r={nose_r:.3f}")
    assert mouth_r >= 0.6
    assert nose_r >= 0.5


def test_driving_video_with_audio_takes_the_audio_length(tmp_path, fixtures, portrait_path):
    audio = make_audio(tmp_path / "a.wav", seconds=1.0)
    out = tmp_path / "puppet.mp4"
    assert cli.main(["render", "--image", str(portrait_path), "--driving-video", str(fixtures / "driving_carphone.mp4"),
                     "--audio", str(audio), "-o", str(out), "--relative-to", "neutral"]) == 0
    p = probe_video(out)
    assert p.frames == 25 and p.audio_codec == "aac"


def test_expression_keyframes_alone(tmp_path, portrait_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"interpolation": "smooth", "keyframes": [
        {"t": 0.0, "jawOpen": 0.0}, {"t": 0.6, "jawOpen": 1.0, "yaw": 15}]}))
    out, lm = tmp_path / "keys.mp4", tmp_path / "lm.npz"
    assert cli.main(["render", "--image", str(portrait_path), "--expression", str(keys), "-o", str(out),
                     "--save-landmarks", str(lm)]) == 0
    p = probe_video(out)
    assert p.audio_codec is None and p.frames == 16  # ceil(0.6 * 25) + 1: the last key is shown
    aperture = mouth_aperture(read_frames(out))
    assert aperture[-1] - aperture[0] > 0.1  # jaw opened by the keys
    track = LandmarkTrack.load(lm)
    nose_shift = track.points[-1, 30, 0] - track.points[0, 30, 0]
    assert nose_shift < -3  # yaw > 0 turns the face toward image-left


def test_expression_layered_over_speech(tmp_path, portrait_path, speech_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text("keyframes:\n  - {t: 0.0, yaw: 20}\n")
    lm_plain, lm_keys = tmp_path / "plain.npz", tmp_path / "keys.npz"
    assert cli.main(["landmarks", "--image", str(portrait_path), "--audio", str(speech_path), "-o", str(lm_plain)]) == 0
    assert cli.main(["landmarks", "--image", str(portrait_path), "--audio", str(speech_path), "-o", str(lm_keys),
                     "--expression", str(keys)]) == 0
    plain, keyed = LandmarkTrack.load(lm_plain), LandmarkTrack.load(lm_keys)
    assert plain.num_frames == keyed.num_frames == 178
    assert (keyed.points[1:, 30, 0] - plain.points[1:, 30, 0]).mean() < -5  # the head is turned throughout
    inner = lambda t: np.linalg.norm(t.points[:, 62] - t.points[:, 66], axis=1)  # noqa: E731
    assert np.corrcoef(inner(plain), inner(keyed))[0, 1] > 0.9  # and still speaks the same


def test_saved_track_renders_and_must_fit_the_portrait(tmp_path, capsys, portrait_path):
    audio = make_audio(tmp_path / "a.wav", seconds=0.6)
    lm = tmp_path / "lm.npz"
    assert cli.main(["landmarks", "--image", str(portrait_path), "--audio", str(audio), "-o", str(lm)]) == 0
    track = LandmarkTrack.load(lm)
    edited = track.points.copy()
    edited[5:, 57:60, 1] += 6  # hand-edit: drop the lower lip from frame 5 on
    LandmarkTrack(edited, track.reference, track.fps).save(lm)
    out = tmp_path / "track.mp4"
    assert cli.main(["render", "--image", str(portrait_path), "--landmarks", str(lm), "--audio", str(audio),
                     "-o", str(out)]) == 0
    assert probe_video(out).frames == track.num_frames
    capsys.readouterr()
    out2 = tmp_path / "wrong.mp4"
    code = cli.main(["render", "--image", str(portrait_path), "--landmarks", str(lm), "-o", str(out2), "--size", "256"])
    assert_clean_failure(code, capsys.readouterr().err, out2, "does not fit this portrait")


@pytest.mark.parametrize("case,pattern", [
    ("video-not-a-video", "not a readable video"), ("expression-bad-name", "jawOpn"), ("expression-bad-json", "json"),
    ("landmarks-not-npz", "not a readable landmark track"), ("nothing", "nothing drives"),
    ("sadtalker-missing", "SadTalker_V0.0.2_256.safetensors"),
])
def test_bad_driver_input_fails_cleanly(tmp_path, capsys, portrait_path, case, pattern):
    out = tmp_path / "out.mp4"
    args = ["render", "--image", str(portrait_path), "-o", str(out)]
    if case == "video-not-a-video":
        bad = tmp_path / "v.mp4"
        bad.write_bytes(b"\x00" * 1000)
        args += ["--driving-video", str(bad)]
    elif case == "expression-bad-name":
        bad = tmp_path / "k.json"
        bad.write_text('{"keyframes": [{"t": 0, "jawOpn": 1}]}')
        args += ["--expression", str(bad)]
    elif case == "expression-bad-json":
        bad = tmp_path / "k.json"
        bad.write_text('{"keyframes": [')
        args += ["--expression", str(bad)]
    elif case == "landmarks-not-npz":
        bad = tmp_path / "lm.npz"
        bad.write_text("nope")
        args += ["--landmarks", str(bad)]
    elif case == "sadtalker-missing":
        args += ["--audio", str(make_audio(tmp_path / "a.wav", 0.5)), "--audio-driver", "sadtalker",
                 "--ckpt-dir", str(tmp_path / "empty")]
    code = cli.main(args)
    assert_clean_failure(code, capsys.readouterr().err, out, pattern)


def test_sadtalker_driver_through_the_cli(tmp_path_factory, portrait_path, speech_path):
    """Random full-size networks of the published layout + a fake BFM: the learned driver renders."""
    import torch

    from landmark_drivers.sadtalker.driver import NETWORKS
    from tests.landmark_drivers.test_sadtalker_fakes import write_checkpoint, write_fake_bfm

    root = tmp_path_factory.mktemp("sadtalker")
    torch.manual_seed(0)
    write_checkpoint(root / "ckpts/sad_talker/SadTalker_V0.0.2_256.safetensors",
                     {name: cls().eval() for name, cls in NETWORKS.items()})
    write_fake_bfm(root / "ckpts/sad_talker/BFM_Fitting", bases=0.02)
    audio = make_audio(root / "a.wav", seconds=1.0)
    out, lm = root / "sad.mp4", root / "lm.npz"
    assert cli.main(["render", "--image", str(portrait_path), "--audio", str(audio), "-o", str(out),
                     "--audio-driver", "sadtalker", "--pose-style", "5", "--ckpt-dir", str(root),
                     "--save-landmarks", str(lm)]) == 0
    p = probe_video(out)
    assert p.frames == 25 and p.audio_codec == "aac"
    track = LandmarkTrack.load(lm)
    assert np.isfinite(track.points).all() and np.allclose(track.points[0], track.reference)
    assert np.abs(track.points[1:] - track.reference).max() > 0.1  # the random networks do move the face
