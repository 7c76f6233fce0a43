"""The video driver replays a driving face on the portrait: in sync, with the right signs, relative."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from landmark_drivers import NUM_BLENDSHAPES, FaceAnalyzer, SourceFace, blendshape_index
from landmark_drivers.resample import fill_gaps, output_times, resample, smooth
from landmark_drivers.retarget import (angles_to_rotation, measure_head, reference_index, relative_blendshapes,
                                       relative_rotation, relative_translation, rotation_to_angles)
from landmark_drivers.rig import FaceRig
from landmark_drivers.video_driver import (DrivingVideoError, VideoDriverOptions, _decoded_frames,
                                           drive_from_video, probe_driving_video)

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

JAW = blendshape_index("jawOpen")
NOSE_TIP_68, NOSE_TIP_MESH = 30, 1


# ---------------------------------------------------------------------------------------------- helpers

def write_video(path: Path, frames, rate, audio_seconds: float = 0.0) -> Path:
    """Encode uint8 RGB frames (an iterable of [H, W, 3]) as H.264 at `rate` fps, optionally with silent AAC."""
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "12"}
        sound = container.add_stream("aac", rate=16000) if audio_seconds else None
        for rgb in (first, *frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            samples = np.zeros((1, int(16000 * audio_seconds)), np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in (*sound.encode(frame), *sound.encode()):
                container.mux(packet)
    return path


class BrightnessAnalyzer:
    """Stands in for FaceAnalyzer: the portrait's face on every frame (or on those `found` picks), with
    jawOpen = the frame's mean brightness, so a bright frame is a "mouth opening" at a known time."""

    def __init__(self, face: SourceFace, found=lambda index: True) -> None:
        self.face, self.found, self.times = face, found, []

    def reset_video(self) -> None:
        self.last = None

    def analyze_video_frame(self, rgb: np.ndarray, timestamp_ms: int):
        assert self.last is None or timestamp_ms > self.last
        self.last = timestamp_ms
        self.times.append(timestamp_ms)
        if not self.found(len(self.times) - 1):
            return None
        weights = np.zeros(NUM_BLENDSHAPES, np.float32)
        weights[JAW] = rgb.mean() / 255.0
        return dataclasses.replace(self.face, blendshapes=weights)


def flash_video(path: Path, rate, seconds: float, centres: tuple[float, ...], width_s: float = 0.08) -> Path:
    """A 32x32 grey clip whose brightness is a Gaussian bump (sigma `width_s`) at each of `centres` seconds."""
    count = int(round(seconds * float(rate)))
    times = np.arange(count) / float(rate)
    level = sum(np.exp(-0.5 * ((times - c) / width_s) ** 2) for c in centres)
    return write_video(path, (np.full((32, 32, 3), int(20 + 220 * v), np.uint8) for v in level), rate)


def mouth_aperture_68(points: np.ndarray) -> np.ndarray:
    """Inner-lip opening (62-66) over the outer-eye-corner distance (36-45): [T, 68, 2] -> [T]."""
    return np.linalg.norm(points[:, 62] - points[:, 66], axis=1) / np.linalg.norm(points[:, 45] - points[:, 36], axis=1)


def nose_offset(nose: np.ndarray, left_eye: np.ndarray, right_eye: np.ndarray, side_a: np.ndarray,
                side_b: np.ndarray) -> np.ndarray:
    """Nose tip offset from the middle of the face sides along the eye line, in eye-corner distances: [T]."""
    eye = right_eye - left_eye
    iod = np.linalg.norm(eye, axis=-1)
    return np.einsum("ti,ti->t", nose - 0.5 * (side_a + side_b), eye / iod[:, None]) / iod


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def analyzer():
    with FaceAnalyzer() as a:
        yield a


@pytest.fixture(scope="module")
def carphone(fixtures: Path, analyzer, tmp_path_factory) -> dict:
    """One pass over the driving clip: mediapipe's own measurements per frame, and a mirrored copy."""
    path = fixtures / "driving_carphone.mp4"
    mirrored = tmp_path_factory.mktemp("mirror") / "carphone_mirrored.mp4"
    times, aperture, nose, frames = [], [], [], []
    analyzer.reset_video()
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(rgb[:, ::-1])
            face = analyzer.analyze_video_frame(rgb, int(round(frame.time * 1000)))
            m = face.mesh[:, :2].astype(np.float64)
            times.append(frame.time)
            aperture.append(np.linalg.norm(m[13] - m[14]) / np.linalg.norm(m[263] - m[33]))
            nose.append(nose_offset(m[None, NOSE_TIP_MESH], m[None, 33], m[None, 263], m[None, 234], m[None, 454])[0])
    analyzer.reset_video()
    write_video(mirrored, frames, rate)
    return {"path": path, "mirrored": mirrored, "times": np.array(times), "aperture": np.array(aperture),
            "nose": np.array(nose)}


@pytest.fixture(scope="module")
def carphone_motion(carphone, analyzer, portrait_face):
    return drive_from_video(carphone["path"], analyzer=analyzer, source=portrait_face)


# ---------------------------------------------------------------------------------------------- the key test

def test_portrait_follows_the_driving_mouth_and_head(carphone, carphone_motion, portrait_face):
    motion = carphone_motion
    assert motion.fps == 25.0 and motion.num_frames == round(4.004 * 25)
    track = FaceRig(portrait_face).track(motion)
    t = output_times(motion.num_frames, motion.fps)
    driving_mouth = np.interp(t, carphone["times"], carphone["aperture"])
    driving_nose = np.interp(t, carphone["times"], carphone["nose"])
    p = track.points.astype(np.float64)
    track_mouth = mouth_aperture_68(p)
    track_nose = nose_offset(p[:, NOSE_TIP_68], p[:, 36], p[:, 45], p[:, 0], p[:, 16])
    mouth_r = np.corrcoef(track_mouth[1:], driving_mouth[1:])[0, 1]  # frame 0 is the portrait itself
    assert mouth_r >= 0.6, mouth_r
    assert np.ptp(carphone["nose"]) > 0.1  # the driver does turn its head (about +-10 deg)
    nose_r = np.corrcoef(track_nose[1:], driving_nose[1:])[0, 1]
    assert nose_r >= 0.5, nose_r
    # yaw > 0 means "toward image-left": the driver's nose then sits left of its face centre.
    assert np.corrcoef(motion.rotation[:, 0], driving_nose)[0, 1] < -0.5


def test_mirrored_driver_flips_yaw_and_roll(carphone, carphone_motion, analyzer, portrait_face):
    mirrored = drive_from_video(carphone["mirrored"], analyzer=analyzer, source=portrait_face)
    a, b = carphone_motion, mirrored
    assert a.num_frames == b.num_frames
    yaw_r = np.corrcoef(a.rotation[:, 0], b.rotation[:, 0])[0, 1]
    roll_r = np.corrcoef(a.rotation[:, 2], b.rotation[:, 2])[0, 1]
    pitch_r = np.corrcoef(a.rotation[:, 1], b.rotation[:, 1])[0, 1]
    shift_r = np.corrcoef(a.translation[:, 0], b.translation[:, 0])[0, 1]
    assert yaw_r < -0.8 and roll_r < -0.8 and pitch_r > 0.8 and shift_r < -0.8, (yaw_r, roll_r, pitch_r, shift_r)
    assert np.abs(a.rotation[:, 0] + b.rotation[:, 0]).mean() < 0.3 * np.abs(a.rotation[:, 0]).mean() + 1.0
    # The mouth does not care about the mirror.
    assert np.corrcoef(a.channel("jawOpen"), b.channel("jawOpen"))[0, 1] > 0.9


def test_in_plane_roll_pan_and_zoom_have_the_documented_signs(portrait_rgb, analyzer, tmp_path):
    """Frames made by rotating the portrait clockwise (roll > 0), then panning right, then zooming in."""
    image = cv2.resize(portrait_rgb, (256, 256), interpolation=cv2.INTER_AREA)
    ref = analyzer.analyze(image)
    head = measure_head(ref.mesh)
    shift_px = 0.4 * head.unit
    roll = np.concatenate([np.linspace(0, 15, 8), np.full(16, 15.0)])
    dx = np.concatenate([np.zeros(8), np.linspace(0, shift_px, 8), np.full(8, shift_px)])
    zoom = np.concatenate([np.ones(16), np.linspace(1.0, 1.2, 8)])
    frames, expected = [], []
    for angle, d, s in zip(roll, dx, zoom, strict=True):
        m = cv2.getRotationMatrix2D((128.0, 128.0), -angle, s)  # OpenCV: positive = counter-clockwise
        m[0, 2] += d
        frames.append(cv2.warpAffine(image, m, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        expected.append((m[:, :2] @ head.pivot[:2] + m[:, 2] - head.pivot[:2]) / head.unit)
    motion = drive_from_video(write_video(tmp_path / "roll.mp4", frames, 25), VideoDriverOptions(smoothing=0.0),
                              analyzer=analyzer)
    assert motion.num_frames == 24
    yaw, pitch, rolled = motion.rotation.T
    np.testing.assert_allclose(rolled, roll, atol=2.0)
    assert np.abs(yaw).max() < 3.0 and np.abs(pitch).max() < 3.0
    np.testing.assert_allclose(motion.translation[:, :2], np.array(expected), atol=0.08)
    np.testing.assert_allclose(motion.translation[:, 2], zoom - 1.0, atol=0.04)


# ---------------------------------------------------------------------------------------------- timing

@pytest.mark.parametrize("rate", [24, Fraction(30000, 1001), 60])
def test_features_land_on_the_right_output_frame_without_drift(rate, portrait_face, tmp_path):
    path = flash_video(tmp_path / "flash.mp4", rate, 10.0, centres=(1.0, 9.6))
    fake = BrightnessAnalyzer(portrait_face)
    motion = drive_from_video(path, analyzer=fake)
    assert motion.num_frames == 250  # round(10 s * 25 fps), whatever the source rate
    jaw = motion.channel("jawOpen").astype(np.float64)
    for centre in (1.0, 9.6):
        k = np.arange(round(centre * 25) - 6, round(centre * 25) + 7)
        weight = np.maximum(jaw[k] - jaw[k].min(), 0)
        peak = (k * weight).sum() / weight.sum()
        assert abs(peak - centre * 25) < 0.3, (float(rate), centre, peak)
    assert len(fake.times) == round(10 * float(rate))


def test_resampling_follows_timestamps_not_frame_counts():
    for rate in (24.0, 30000 / 1001, 60.0):
        times = np.arange(round(10 * rate)) / rate
        ramp = resample(times, times[:, None], output_times(250, 25.0))[:, 0]
        inside = output_times(250, 25.0) <= times[-1]
        np.testing.assert_allclose(ramp[inside], output_times(250, 25.0)[inside], atol=1e-9)
        assert np.all(ramp[~inside] == times[-1])  # held after the last sample


def test_gaps_are_interpolated_and_smoothing_is_zero_phase():
    times = np.arange(20) / 25.0
    values = np.where(np.arange(20) < 10, 0.0, 1.0)[:, None] * np.arange(20)[:, None]
    found = np.ones(20, bool)
    found[[0, 1, 5, 6, 7, 19]] = False
    filled = fill_gaps(times, values, found)
    assert filled[0, 0] == filled[1, 0] == values[2, 0]  # held before the first found sample
    np.testing.assert_allclose(filled[5:8, 0], values[4, 0] + (values[8, 0] - values[4, 0]) * np.array([1, 2, 3]) / 4)
    assert filled[19, 0] == values[18, 0]
    pulse = np.exp(-0.5 * ((np.arange(101) - 50) / 3.0) ** 2)[:, None]
    smoothed = smooth(np.arange(101) / 25.0, pulse, 0.1)
    assert int(np.argmax(smoothed)) == 50 and smoothed[50, 0] < pulse[50, 0]
    np.testing.assert_allclose(smoothed[:50, 0], smoothed[:50:-1, 0], atol=1e-12)  # symmetric: no lag


def test_tail_holds_or_eases_to_the_portrait():
    times = np.array([0.0, 1.0])
    values = np.array([[0.0], [1.0]])
    out = output_times(50, 25.0)  # 2 s
    held = resample(times, values, out, end_time=1.04, tail="hold")[:, 0]
    eased = resample(times, values, out, end_time=1.04, tail="neutral", ease_s=0.4)[:, 0]
    assert np.all(held[25:] == 1.0)
    assert eased[26] == 1.0 and 0.0 < eased[30] < 1.0 and np.all(eased[37:] == 0.0)
    assert np.all(np.diff(eased[26:]) <= 0)


def test_num_frames_override_extends_past_the_video(portrait_face, tmp_path):
    path = flash_video(tmp_path / "short.mp4", 25, 1.0, centres=(0.98,), width_s=0.2)
    hold = drive_from_video(path, VideoDriverOptions(tail="hold", smoothing=0), num_frames=50,
                            analyzer=BrightnessAnalyzer(portrait_face))
    ease = drive_from_video(path, VideoDriverOptions(smoothing=0), num_frames=50,
                            analyzer=BrightnessAnalyzer(portrait_face))
    assert hold.num_frames == ease.num_frames == 50
    last = hold.channel("jawOpen")[24]
    assert last > 0.5 and np.allclose(hold.channel("jawOpen")[25:], last)
    assert np.all(ease.channel("jawOpen")[40:] == 0)


# ---------------------------------------------------------------------------------------------- retargeting

def test_rotation_decomposition_matches_the_rigs_convention(portrait_face):
    rng = np.random.default_rng(0)
    angles = rng.uniform(-40, 40, size=(20, 3))
    np.testing.assert_allclose(rotation_to_angles(angles_to_rotation(angles)), angles, atol=1e-9)
    mesh = portrait_face.mesh.astype(np.float64)
    head = measure_head(mesh)
    rig = FaceRig(portrait_face)
    for yaw, pitch, roll in ((10, 0, 0), (0, 10, 0), (0, 0, 10), (12, -7, 5)):
        turn = head.axes @ angles_to_rotation(np.array([yaw, pitch, roll])) @ head.axes.T  # image axes
        moved = (mesh - head.pivot) @ turn.T + head.pivot
        measured = relative_rotation(measure_head(moved).axes[None], head.axes)[0]
        np.testing.assert_allclose(measured, [yaw, pitch, roll], atol=1e-6)
        # The rig moves the 68-point nose tip the same way the measured mesh's nose tip moved.
        rig_points = rig.frame(np.zeros(NUM_BLENDSHAPES), np.array([yaw, pitch, roll], float), np.zeros(3))
        rig_move = rig_points[NOSE_TIP_68] - portrait_face.landmarks68[NOSE_TIP_68]
        mesh_move = moved[NOSE_TIP_MESH, :2] - mesh[NOSE_TIP_MESH, :2]
        assert np.dot(rig_move, mesh_move) > 0.8 * np.linalg.norm(rig_move) * np.linalg.norm(mesh_move)
    # FaceMotion's words: yaw > 0 nose to image-left, pitch > 0 nose up, roll > 0 clockwise on screen.
    for angles, check in (((10, 0, 0), lambda d, e: d[0] < 0), ((0, 10, 0), lambda d, e: d[1] < 0),
                          ((0, 0, 10), lambda d, e: e > 0)):
        turn = head.axes @ angles_to_rotation(np.array(angles)) @ head.axes.T
        moved = (mesh - head.pivot) @ turn.T + head.pivot
        eye, eye0 = moved[263, :2] - moved[33, :2], mesh[263, :2] - mesh[33, :2]
        assert check(moved[NOSE_TIP_MESH] - mesh[NOSE_TIP_MESH],
                     np.arctan2(eye[1], eye[0]) - np.arctan2(eye0[1], eye0[0]))


def test_translation_and_expressions_are_relative():
    shift = relative_translation(np.array([[10.0, 20.0, 0.0], [13.0, 18.0, 5.0]]), np.array([50.0, 55.0]),
                                 np.array([10.0, 20.0, 0.0]), 20.0, 50.0)
    np.testing.assert_allclose(shift, [[0, 0, 0], [0.15, -0.1, 0.1]])
    weights = np.zeros((3, NUM_BLENDSHAPES))
    weights[:, JAW] = [0.3, 0.8, 0.0]
    weights[:, 0] = 0.9  # _neutral never passes through
    delta = relative_blendshapes(weights, weights[0], expressiveness=1.0)
    np.testing.assert_allclose(delta[:, JAW], [0.0, 0.5, -0.3])
    assert np.all(delta[:, 0] == 0)
    own = np.zeros(NUM_BLENDSHAPES)
    own[JAW] = 0.1
    limited = relative_blendshapes(weights, weights[0], expressiveness=3.0, source_blendshapes=own)
    np.testing.assert_allclose(limited[:, JAW], [0.0, 1.0, -0.1])  # clipped to 1; no closing past the portrait


def test_neutral_reference_is_the_least_expressive_frame(portrait_face, tmp_path):
    weights = np.zeros((4, NUM_BLENDSHAPES))
    weights[:, JAW] = [0.5, 0.1, 0.05, 0.4]
    weights[2, blendshape_index("eyeBlinkLeft")] = 0.9  # a blink is not neutral
    weights[1, blendshape_index("eyeLookOutLeft")] = 0.8  # gaze does not count
    found = np.array([True, True, True, True])
    assert reference_index(weights, found, "first") == 0
    assert reference_index(weights, found, "neutral") == 1
    assert reference_index(weights, np.array([False, False, True, True]), "first") == 2
    # End to end: a clip that starts with an open mouth; "neutral" measures from its darkest frame.
    path = flash_video(tmp_path / "open_start.mp4", 25, 2.0, centres=(0.0, 1.6), width_s=0.3)
    first = drive_from_video(path, analyzer=BrightnessAnalyzer(portrait_face))
    neutral = drive_from_video(path, VideoDriverOptions(relative_to="neutral"),
                               analyzer=BrightnessAnalyzer(portrait_face))
    assert first.channel("jawOpen")[0] == 0 and first.channel("jawOpen")[20] < -0.5
    assert neutral.channel("jawOpen")[0] > 0.5 and neutral.channel("jawOpen").min() > -0.01


def test_scales_and_missing_faces(portrait_face, tmp_path):
    path = flash_video(tmp_path / "flash.mp4", 25, 2.0, centres=(1.0,))
    still = drive_from_video(path, VideoDriverOptions(expressiveness=0.0), analyzer=BrightnessAnalyzer(portrait_face))
    assert np.all(still.blendshapes == 0)
    full = drive_from_video(path, VideoDriverOptions(smoothing=0), analyzer=BrightnessAnalyzer(portrait_face))
    # Every third frame without a face: filled by interpolation, the flash still peaks at 1.0 s.
    gappy = drive_from_video(path, VideoDriverOptions(smoothing=0),
                             analyzer=BrightnessAnalyzer(portrait_face, found=lambda i: i % 3 != 2))
    assert int(np.argmax(gappy.channel("jawOpen"))) == 25
    assert np.abs(gappy.channel("jawOpen") - full.channel("jawOpen")).max() < 0.15
    progress = []
    drive_from_video(path, analyzer=BrightnessAnalyzer(portrait_face), progress=lambda *a: progress.append(a))
    assert progress[0] == ("driving video", 0, 50) and progress[-1] == ("driving video", 50, 50)


# ---------------------------------------------------------------------------------------------- probing, errors

def test_probe(carphone, tmp_path):
    info = probe_driving_video(carphone["path"])
    assert info.num_frames == 120 and not info.has_audio
    assert info.duration == pytest.approx(4.004, abs=1e-3) and info.fps == pytest.approx(29.97, abs=0.01)
    duration, fps, has_audio, num_frames = probe_driving_video(
        write_video(tmp_path / "talk.mp4", [np.zeros((32, 32, 3), np.uint8)] * 10, 25, audio_seconds=0.4))
    assert has_audio and num_frames == 10 and fps == 25 and duration == pytest.approx(0.4, abs=0.05)


def test_display_rotation_is_applied(tmp_path):
    upright = np.zeros((48, 32, 3), np.uint8)
    upright[:8, :8] = 255  # a bright top-left corner
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:  # stored lying on its side, shown upright (like a phone video)
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(90)
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(upright, k=-1)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    _, _, rgb = next(_decoded_frames(path, None))
    assert rgb.shape == (48, 32, 3) and rgb[:8, :8].mean() > 200 and rgb[-8:, -8:].mean() < 50


@pytest.mark.parametrize("case", ["missing", "text", "audio_only", "still_image", "directory"])
def test_unusable_files_raise_one_line_errors_naming_the_file(case, tmp_path, speech_path, portrait_path):
    path = {"missing": tmp_path / "nope.mp4", "text": tmp_path / "notes.mp4", "audio_only": speech_path,
            "still_image": portrait_path, "directory": tmp_path}[case]
    if case == "text":
        path.write_text("not a video\n")
    with pytest.raises(DrivingVideoError) as err:
        drive_from_video(path, analyzer=object())  # never reaches face analysis
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(err.value, ValueError)


def test_faceless_and_too_long_videos_are_refused(analyzer, portrait_face, tmp_path, carphone):
    grey = write_video(tmp_path / "grey.mp4", [np.full((64, 64, 3), 128, np.uint8)] * 5, 25)
    with pytest.raises(DrivingVideoError, match="no face found in any of its 5 frames"):
        drive_from_video(grey, analyzer=analyzer)
    path = flash_video(tmp_path / "flash.mp4", 25, 2.0, centres=(1.0,))
    with pytest.raises(DrivingVideoError, match=r"only 5 of 50 frames \(10%"):
        drive_from_video(path, analyzer=BrightnessAnalyzer(portrait_face, found=lambda i: i % 10 == 0))
    looser = VideoDriverOptions(min_face_fraction=0.05)
    assert drive_from_video(path, looser, analyzer=BrightnessAnalyzer(portrait_face, found=lambda i: i % 10 == 0))
    with pytest.raises(DrivingVideoError, match="longer than the 2 s limit"):
        drive_from_video(carphone["path"], VideoDriverOptions(max_duration=2.0), analyzer=object())


@pytest.mark.parametrize("bad", [dict(fps=0), dict(relative_to="middle"), dict(smoothing=-1), dict(head_motion=9),
                                 dict(max_duration=0), dict(tail="loop"), dict(min_face_fraction=2)])
def test_options_are_validated(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        VideoDriverOptions(**bad)
