"""The face rig turns FaceMotion into plausible, correctly oriented 68-point tracks on the portrait."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from landmark_drivers import NUM_BLENDSHAPES, FaceMotion, SourceFace, blendshape_index
from landmark_drivers.rig import FaceRig

NOSE_TIP, CHIN = 30, 8
LEFT_LIDS = ((43, 47), (44, 46))  # subject's left eye = image right
RIGHT_LIDS = ((37, 41), (38, 40))
INNER_LIPS = ((61, 67), (62, 66), (63, 65))


def make_motion(num_frames: int = 2, rotation=(0.0, 0.0, 0.0), translation=(0.0, 0.0, 0.0), **weights) -> FaceMotion:
    """A motion holding the same pose on every frame (frame 0 included; the rig overrides it)."""
    bs = np.zeros((num_frames, NUM_BLENDSHAPES), np.float32)
    for name, w in weights.items():
        bs[:, blendshape_index(name)] = w
    return FaceMotion(blendshapes=bs, rotation=np.tile(np.float32(rotation), (num_frames, 1)),
                      translation=np.tile(np.float32(translation), (num_frames, 1)), fps=25.0)


def pose(rig: FaceRig, rotation=(0.0, 0.0, 0.0), translation=(0.0, 0.0, 0.0), **weights) -> np.ndarray:
    bs = np.zeros(NUM_BLENDSHAPES)
    for name, w in weights.items():
        bs[blendshape_index(name)] = w
    return rig.frame(bs, np.array(rotation, float), np.array(translation, float))


def aperture(points: np.ndarray, pairs) -> np.ndarray:
    return np.array([np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1) for a, b in pairs])


def transformed(face: SourceFace, scale: float = 1.0, degrees: float = 0.0) -> SourceFace:
    """The same face in an image scaled by `scale` and rotated by `degrees` (clockwise on screen)."""
    h, w = face.image_size
    centre = np.array([w / 2.0, h / 2.0])
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    rot = np.array([[c, -s], [s, c]])

    def move(xy: np.ndarray) -> np.ndarray:
        return ((xy - centre) @ rot.T + centre) * scale

    mesh = face.mesh.astype(np.float64).copy()
    mesh[:, :2] = move(mesh[:, :2])
    mesh[:, 2] *= scale
    roll = np.eye(4)
    roll[:2, :2] = rot.T  # the pose is in y-up camera axes: a clockwise screen turn is the transpose
    return dataclasses.replace(face, image_size=(round(h * scale), round(w * scale)), mesh=mesh.astype(np.float32),
                               landmarks68=move(face.landmarks68.astype(np.float64)).astype(np.float32),
                               pose=(roll @ face.pose).astype(np.float32))


@pytest.fixture(scope="module")
def rig(portrait_face: SourceFace) -> FaceRig:
    return FaceRig(portrait_face)


@pytest.fixture(scope="module")
def iod(portrait_face: SourceFace) -> float:
    return portrait_face.interocular


def test_zero_motion_gives_exactly_the_reference(rig, portrait_face):
    track = rig.track(FaceMotion.still(6, fps=25.0))
    assert track.points.dtype == np.float32 and track.points.shape == (6, 68, 2)
    assert np.array_equal(track.reference, portrait_face.landmarks68)
    assert all(np.array_equal(p, portrait_face.landmarks68) for p in track.points)


def test_frame_zero_is_forced_to_the_portrait(rig, portrait_face):
    track = rig.track(make_motion(3, rotation=(10.0, 0.0, 0.0), jawOpen=1.0))
    assert np.array_equal(track.points[0], portrait_face.landmarks68)
    assert np.abs(track.points[1] - portrait_face.landmarks68).max() > 5.0
    assert np.array_equal(track.points[1], track.points[2])


def test_jaw_open_opens_the_lips_monotonically_and_drops_the_chin_not_the_eyes(rig, portrait_face, iod):
    ref = portrait_face.landmarks68
    frames = np.stack([pose(rig, jawOpen=w) for w in np.linspace(0.0, 1.0, 6)])
    gap = aperture(frames, [(62, 66)])[0]
    assert np.all(np.diff(gap) > 0.02 * iod)
    assert 0.3 * iod < gap[-1] - gap[0] < 0.5 * iod
    chin = frames[-1, CHIN] - ref[CHIN]
    assert chin[1] > 0.15 * iod and abs(chin[0]) < 0.02 * iod
    assert np.array_equal(frames[-1, 17:48], ref[17:48])  # brows, nose and eyes stay put
    assert frames[-1, 66, 1] - ref[66, 1] > frames[-1, 62, 1] - ref[62, 1] + 0.3 * iod  # the lower lip drops


@pytest.mark.parametrize("name, closing, other", [("eyeBlinkLeft", LEFT_LIDS, RIGHT_LIDS),
                                                  ("eyeBlinkRight", RIGHT_LIDS, LEFT_LIDS)])
def test_blink_closes_that_eye_only(rig, portrait_face, name, closing, other):
    ref = portrait_face.landmarks68
    closed, half = pose(rig, **{name: 1.0}), pose(rig, **{name: 0.5})
    assert aperture(closed, closing).max() < 1e-3
    np.testing.assert_allclose(aperture(half, closing), 0.5 * aperture(ref, closing), rtol=0.05)
    other_eye = [i for pair in other for i in pair] + [36, 39, 42, 45]
    assert np.array_equal(closed[other_eye], ref[other_eye])
    # ARKit sides are the subject's: the left eye is the one on the image right.
    eye_x = ref[[i for pair in closing for i in pair], 0].mean()
    assert (eye_x > ref[:, 0].mean()) == name.endswith("Left")


def test_blink_closes_the_eye_whatever_its_openness_in_the_portrait(portrait_face):
    wide = portrait_face.landmarks68.copy()
    wide[[43, 44], 1] -= 4.0  # a wider-open left eye in the portrait
    closed = pose(FaceRig(dataclasses.replace(portrait_face, landmarks68=wide)), eyeBlinkLeft=1.0)
    assert aperture(closed, LEFT_LIDS).max() < 1e-3


def test_smile_widens_and_raises_the_mouth_corners(rig, portrait_face, iod):
    ref = portrait_face.landmarks68
    both = pose(rig, mouthSmileLeft=1.0, mouthSmileRight=1.0)
    assert (both[54, 0] - both[48, 0]) - (ref[54, 0] - ref[48, 0]) > 0.1 * iod
    assert (both[[48, 54], 1] - ref[[48, 54], 1] < -0.04 * iod).all()
    left = pose(rig, mouthSmileLeft=1.0)
    assert left[54, 0] - ref[54, 0] > 0.05 * iod
    assert np.abs(left[48] - ref[48]).max() < 0.01 * iod


@pytest.mark.parametrize("angle", [15.0, -15.0])
def test_yaw_moves_the_nose_tip_sideways_with_facemotion_sign(rig, portrait_face, iod, angle):
    d = pose(rig, rotation=(angle, 0.0, 0.0))[NOSE_TIP] - portrait_face.landmarks68[NOSE_TIP]
    assert np.sign(d[0]) == -np.sign(angle)  # yaw > 0 turns the face toward image-left
    assert 0.2 * iod < abs(d[0]) < 0.6 * iod and abs(d[1]) < 0.1 * iod


@pytest.mark.parametrize("angle", [15.0, -15.0])
def test_pitch_moves_the_nose_tip_vertically(rig, portrait_face, iod, angle):
    d = pose(rig, rotation=(0.0, angle, 0.0))[NOSE_TIP] - portrait_face.landmarks68[NOSE_TIP]
    assert np.sign(d[1]) == -np.sign(angle)  # chin up: the nose tip rises in the image
    assert 0.2 * iod < abs(d[1]) < 0.6 * iod and abs(d[0]) < 0.1 * iod


@pytest.mark.parametrize("angle", [10.0, -25.0])
def test_roll_rotates_the_eye_line_by_the_angle(rig, portrait_face, angle):
    def eye_angle(p):
        v = p[45] - p[36]
        return np.degrees(np.arctan2(v[1], v[0]))

    turned = eye_angle(pose(rig, rotation=(0.0, 0.0, angle))) - eye_angle(portrait_face.landmarks68)
    assert turned == pytest.approx(angle, abs=0.5)  # y is down: a positive angle is clockwise on screen


def test_translation_shifts_in_interocular_units_and_z_scales(rig, portrait_face, iod):
    ref = portrait_face.landmarks68
    shifted = pose(rig, translation=(0.5, -0.25, 0.0))
    np.testing.assert_allclose(shifted - ref, np.broadcast_to([0.5 * iod, -0.25 * iod], ref.shape), atol=1e-3)
    bigger = pose(rig, translation=(0.0, 0.0, 0.1))

    def spans(p):
        return np.linalg.norm(p[:, None] - p[None], axis=-1)

    np.testing.assert_allclose(spans(bigger), 1.1 * spans(ref), rtol=1e-5, atol=1e-3)
    assert np.linalg.norm(bigger.mean(0) - ref.mean(0)) < 0.05 * iod  # scaled about the face


COMBINED = dict(rotation=(12.0, -8.0, 5.0), translation=(0.0, 0.0, 0.05), jawOpen=0.6, mouthSmileLeft=0.7,
                eyeBlinkRight=1.0, browInnerUp=0.5, mouthPucker=0.3, browDownLeft=0.4)


def test_bases_scale_with_the_face(portrait_face):
    ref = portrait_face.landmarks68
    small = pose(FaceRig(portrait_face), **COMBINED) - ref
    large = pose(FaceRig(transformed(portrait_face, scale=2.0)), **COMBINED) - 2.0 * ref
    np.testing.assert_allclose(large, 2.0 * small, atol=0.02)
    assert np.abs(small).max() > 5.0


def test_a_rolled_portrait_gets_rotated_displacements(portrait_face):
    rolled_face = transformed(portrait_face, degrees=30.0)
    upright = pose(FaceRig(portrait_face), **COMBINED) - portrait_face.landmarks68
    rolled = pose(FaceRig(rolled_face), **COMBINED) - rolled_face.landmarks68
    c, s = np.cos(np.radians(30.0)), np.sin(np.radians(30.0))
    np.testing.assert_allclose(rolled, upright @ np.array([[c, -s], [s, c]]).T, atol=0.02)


def test_mouth_close_shuts_the_portrait_lips_and_cancels_jaw_open(rig, portrait_face, iod):
    ref = portrait_face.landmarks68
    assert aperture(ref, [(62, 66)])[0] > 0.05 * iod  # the example smiles with parted lips
    assert aperture(pose(rig, mouthClose=1.0), INNER_LIPS).max() < 0.02 * iod
    both = aperture(pose(rig, jawOpen=0.5, mouthClose=0.5), INNER_LIPS)
    assert (both < aperture(pose(rig, jawOpen=0.5), INNER_LIPS) - 0.1 * iod).all()
    assert (both <= aperture(ref, INNER_LIPS) + 1e-3).all()


def test_lips_and_lids_of_a_closed_face_never_cross(portrait_face, iod):
    lm = portrait_face.landmarks68.copy()
    for upper, lower in INNER_LIPS:  # close the portrait's mouth: the inner lips meet
        lm[upper] = lm[lower] = 0.5 * (lm[upper] + lm[lower])
    rig = FaceRig(dataclasses.replace(portrait_face, landmarks68=lm))
    rng = np.random.default_rng(0)
    names = ["mouthClose", "mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper",
             "mouthShrugLower", "mouthPucker", "eyeBlinkLeft", "eyeSquintLeft", "eyeLookDownLeft", "cheekSquintLeft"]
    for _ in range(20):
        p = pose(rig, **dict(zip(names, rng.uniform(0.0, 1.0, len(names)), strict=True)))
        for upper, lower in INNER_LIPS + LEFT_LIDS:
            assert p[lower, 1] - p[upper, 1] > -0.01 * iod, (upper, lower)


def test_track_equals_frame_by_frame_evaluation(rig):
    rng = np.random.default_rng(1)
    t = 5
    motion = FaceMotion(blendshapes=rng.uniform(0, 0.6, (t, NUM_BLENDSHAPES)).astype(np.float32),
                        rotation=rng.normal(0, 8, (t, 3)).astype(np.float32),
                        translation=rng.normal(0, 0.05, (t, 3)).astype(np.float32), fps=30.0)
    track = rig.track(motion)
    assert track.fps == 30.0
    for i in range(1, t):
        np.testing.assert_allclose(track.points[i], rig.frame(motion.blendshapes[i], motion.rotation[i],
                                                               motion.translation[i]), atol=1e-4)


@pytest.mark.parametrize("name", ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft",
                                  "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthLowerDownLeft",
                                  "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "eyeBlinkLeft",
                                  "eyeBlinkRight", "browInnerUp", "browDownLeft", "browDownRight",
                                  "browOuterUpLeft", "browOuterUpRight", "eyeWideLeft", "eyeSquintRight",
                                  "mouthFrownLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper",
                                  "cheekPuff", "jawLeft", "jawRight"])
def test_each_basis_moves_its_region_of_the_face(rig, iod, name):
    moved = np.flatnonzero(np.abs(rig.basis(name)).max(axis=1) > 0.005 * iod)
    assert moved.size
    region = {"jaw": range(0, 68), "mou": range(48, 68), "eye": range(36, 48), "bro": range(17, 27),
              "che": range(0, 17)}[name[:3]]
    assert set(moved) <= set(region)


@pytest.mark.parametrize("field, index, value, message", [
    ("blendshapes", (1, 25), np.nan, "nan"), ("rotation", (0, 1), np.inf, "inf"),
    ("translation", (1, 2), -1.5, "-1.5"), ("blendshapes", (1, 9), 5.0, "eyeBlinkLeft = 5.0"),
    ("rotation", (1, 0), 120.0, "yaw = 120.0")])
def test_invalid_motion_raises_with_the_value(rig, field, index, value, message):
    motion = make_motion(2)
    getattr(motion, field)[index] = value
    with pytest.raises(ValueError, match=message):
        rig.track(motion)


def test_invalid_inputs_raise(rig, portrait_face):
    with pytest.raises(ValueError, match=r"\(51,\)"):
        rig.frame(np.zeros(51), np.zeros(3), np.zeros(3))
    bad = portrait_face.landmarks68.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        FaceRig(dataclasses.replace(portrait_face, landmarks68=bad))
