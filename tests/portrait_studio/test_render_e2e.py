"""End to end through the CLI on the bundled example: a real mp4 whose mouth moves with the speech."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from landmark_drivers import LandmarkTrack
from portrait_studio import cli
from portrait_studio.media import load_audio

from .media_utils import make_audio, probe_video, read_frames

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_render(tmp_path_factory, portrait_path, speech_path):
    out_dir = tmp_path_factory.mktemp("demo")
    out = out_dir / "demo.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "portrait_studio", "render", "--image", str(portrait_path), "--audio",
         str(speech_path), "-o", str(out), "--engine", "auto", "--save-landmarks", str(out_dir / "lm.npz")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, out_dir, proc


def test_mp4_streams_duration_and_frames(demo_render, speech_path):
    out, out_dir, proc = demo_render
    p = probe_video(out)
    duration = len(load_audio(speech_path)) / 16000
    assert (p.video_codec, p.audio_codec, p.pix_fmt) == ("h264", "aac", "yuv420p")
    assert (p.width, p.height) == (512, 512)
    assert p.frames == round(duration * 25)
    assert p.duration == pytest.approx(duration, abs=0.1)
    assert p.audio_duration == pytest.approx(duration, abs=0.1)
    assert "engine warp" in proc.stderr  # auto says which engine it picked
    assert sorted(x.name for x in out_dir.iterdir()) == ["demo.mp4", "lm.npz"]  # no temporaries left
    track = LandmarkTrack.load(out_dir / "lm.npz")
    assert track.num_frames == p.frames and np.allclose(track.points[0], track.reference)


def mouth_aperture(frames):
    """Inner-lip opening / eye-corner distance per frame, measured by mediapipe on the output video."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from landmark_drivers.face_analysis import default_model_path

    opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(default_model_path())),
                                        running_mode=vision.RunningMode.IMAGE, num_faces=1)
    values = []
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        for f in frames:
            r = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(f)))
            p = np.array([(q.x * f.shape[1], q.y * f.shape[0]) for q in r.face_landmarks[0]])
            values.append(np.linalg.norm(p[13] - p[14]) / np.linalg.norm(p[33] - p[263]))
    return np.array(values)


def loudness(speech_path, num_frames, fps=25):
    samples = load_audio(speech_path, 16000)
    hop = 16000 // fps
    env = np.array([np.sqrt(np.mean(samples[max(0, t * hop - hop // 2): t * hop + hop // 2 + 1] ** 2))
                    for t in range(num_frames)])
    return 20 * np.log10(env + 1e-4)


def test_mouth_opens_and_closes_with_the_speech(demo_render, speech_path):
    out, _, _ = demo_render
    frames = read_frames(out)
    aperture = mouth_aperture(frames)
    env = loudness(speech_path, len(frames))
    rest = aperture[0]  # the photo's own lips (this portrait smiles with parted lips)
    assert aperture.max() - rest > 0.08  # the mouth really opens...
    assert np.percentile(aperture, 10) < rest + 0.03  # ... and closes again
    lags = range(-6, 7)

    def corr(lag):
        a = aperture[max(0, lag): len(aperture) + min(0, lag)]
        e = env[max(0, -lag): len(env) + min(0, -lag)]
        return float(np.corrcoef(a, e)[0, 1])

    c = {lag: corr(lag) for lag in lags}
    best = max(c, key=c.get)
    print("aperture/loudness correlation by lag:", {k: round(v, 3) for k, v in c.items()})
    assert c[best] > 0.5, c
    assert abs(best) <= 2, c


def test_silent_audio_renders_a_still_mouth(tmp_path, capsys, portrait_path):
    audio = make_audio(tmp_path / "silence.wav", seconds=1.0, silent=True)
    out = tmp_path / "still.mp4"
    assert cli.main(["render", "--image", str(portrait_path), "--audio", str(audio), "-o", str(out),
                     "--engine", "warp"]) == 0
    p = probe_video(out)
    assert p.frames == 25 and p.audio_codec == "aac"
    aperture = mouth_aperture(read_frames(out))
    assert aperture.max() - aperture.min() < 0.02


def test_several_faces_animate_the_largest_with_a_warning(tmp_path, capsys, portrait_path, caplog):
    face = Image.open(portrait_path).convert("RGB")
    canvas = Image.new("RGB", (1024, 512), (90, 90, 90))
    canvas.paste(face, (0, 0))
    canvas.paste(face.resize((384, 384)), (640, 128))  # mediapipe needs faces >~ 1/4 of its view
    image = tmp_path / "two.png"
    canvas.save(image)
    audio = make_audio(tmp_path / "a.wav", seconds=0.4)
    out = tmp_path / "two.mp4"
    lm = tmp_path / "lm.npz"
    code = cli.main(["render", "--image", str(image), "--audio", str(audio), "-o", str(out), "--engine", "warp",
                     "--save-landmarks", str(lm)])
    assert code == 0
    assert "2 faces" in capsys.readouterr().err + caplog.text
    ref = LandmarkTrack.load(lm).reference
    assert ref[:, 0].max() < 512  # the large face on the left, not the small one on the right


def test_landmarks_command(tmp_path, capsys, portrait_path):
    audio = make_audio(tmp_path / "a.wav", seconds=0.8)
    out = tmp_path / "lm.npz"
    assert cli.main(["landmarks", "--image", str(portrait_path), "--audio", str(audio), "-o", str(out)]) == 0
    track = LandmarkTrack.load(out)
    assert track.points.shape == (20, 68, 2) and track.fps == 25


def test_debug_dir_videos(tmp_path, portrait_path):
    audio = make_audio(tmp_path / "a.wav", seconds=0.4)
    debug = tmp_path / "debug"
    assert cli.main(["render", "--image", str(portrait_path), "--audio", str(audio), "-o", str(tmp_path / "o.mp4"),
                     "--engine", "warp", "--debug-dir", str(debug)]) == 0
    for name in ("landmarks.mp4", "flow.mp4"):
        p = probe_video(debug / name)
        assert p.frames == 10 and (p.width, p.height) == (512, 512)
