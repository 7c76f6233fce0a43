"""BFM landmark projection (spec §8.1 step 6) and source alignment (step 1) on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat
from scipy.spatial.transform import Rotation

from landmark_drivers.sadtalker.align import align_for_recon, face_crop, fit_scale_translation, five_points
from landmark_drivers.sadtalker.bfm import (BFMFormatError, load_bfm, load_lm3d_template, project_landmarks,
                                            rotation_matrices)

from .test_sadtalker_fakes import face_layout, fake_source, write_fake_bfm


def coeffs(exp=None, angle=(0.0, 0.0, 0.0), trans=(0.0, 0.0, 0.0)) -> np.ndarray:
    c = np.zeros((1, 257))
    if exp is not None:
        c[0, 80:144] = exp
    c[0, 224:227], c[0, 254:257] = angle, trans
    return c


def pinhole(points: np.ndarray) -> np.ndarray:
    """The spec's camera by hand: z' = 10 - z, u = 1015 x / z' + 112, v = 224 - (1015 y / z' + 112)."""
    depth = 10.0 - points[:, 2]
    return np.stack([1015.0 * points[:, 0] / depth + 112.0, 224.0 - (1015.0 * points[:, 1] / depth + 112.0)], 1)


@pytest.fixture(scope="module")
def fake_bfm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bfm")
    arrays = write_fake_bfm(folder, bases=0.0)
    vertices = arrays["meanshape"].reshape(-1, 3).astype(np.float64)
    keypoint_vertices = vertices[arrays["keypoints"].astype(int).ravel() - 1] - vertices.mean(axis=0)
    return folder, load_bfm(folder / "BFM_model_front.mat"), keypoint_vertices


def test_mean_shape_is_recentred_and_keypoints_are_one_based(fake_bfm):
    _, bfm, expected = fake_bfm
    np.testing.assert_allclose(bfm.mean, expected, atol=1e-6)
    # the keypoints are the face layout (y flipped), up to the recentring shift
    layout = face_layout() * [1, -1, 1]
    np.testing.assert_allclose(bfm.mean - bfm.mean[30], layout - layout[30], atol=1e-6)


def test_zero_bases_project_the_mean_shape_with_the_pinhole_camera(fake_bfm):
    _, bfm, mean = fake_bfm
    got = project_landmarks(coeffs(exp=np.ones(64), trans=(0.1, -0.2, 0.5)), bfm)[0]
    np.testing.assert_allclose(got, pinhole(mean + [0.1, -0.2, 0.5]), atol=1e-4)
    # a face at the origin looks at the camera: the nose tip is near the centre, eyes above it on screen
    frontal = project_landmarks(coeffs(), bfm)[0]
    assert frontal[36, 1] < frontal[30, 1] < frontal[57, 1] and frontal[36, 0] < frontal[45, 0]


def test_rotation_is_rz_ry_rx_applied_before_translation(fake_bfm):
    _, bfm, mean = fake_bfm
    angles = np.array([0.2, -0.3, 0.1])
    r = Rotation.from_euler("xyz", angles).as_matrix()  # extrinsic x, then y, then z = Rz @ Ry @ Rx
    np.testing.assert_allclose(rotation_matrices(angles[None])[0], r, atol=1e-12)
    yaw = rotation_matrices(np.array([[0.0, np.pi / 2, 0.0]]))[0]
    np.testing.assert_allclose(yaw @ [1.0, 0.0, 0.0], [0.0, 0.0, -1.0], atol=1e-12)  # Ry(90): x -> -z
    got = project_landmarks(coeffs(angle=angles, trans=(0.0, 0.1, 0.2)), bfm)[0]
    np.testing.assert_allclose(got, pinhole(mean @ r.T + [0.0, 0.1, 0.2]), atol=1e-4)


def test_expression_basis_moves_the_landmarks(tmp_path):
    arrays = write_fake_bfm(tmp_path, bases=0.05)
    bfm = load_bfm(tmp_path / "BFM_model_front.mat")
    exp = np.zeros(64)
    exp[3] = 2.0
    kp = arrays["keypoints"].astype(int).ravel() - 1
    offset = arrays["exBase"].astype(np.float64).reshape(-1, 3, 64)[kp, :, 3] * 2.0  # [68, 3]
    np.testing.assert_allclose(bfm.shape(np.zeros((1, 80)), exp[None])[0], bfm.mean + offset, atol=1e-6)
    moved = project_landmarks(coeffs(exp=exp), bfm)[0]
    np.testing.assert_allclose(moved, pinhole(bfm.mean + offset), atol=1e-4)


def test_malformed_bfm_files_name_the_problem(tmp_path):
    arrays = write_fake_bfm(tmp_path)
    del arrays["exBase"]
    savemat(str(tmp_path / "BFM_model_front.mat"), arrays)
    with pytest.raises(BFMFormatError, match="exBase"):
        load_bfm(tmp_path / "BFM_model_front.mat")
    arrays = write_fake_bfm(tmp_path)
    arrays["keypoints"][0, 0] = 10_000
    savemat(str(tmp_path / "BFM_model_front.mat"), arrays)
    with pytest.raises(BFMFormatError, match="keypoints"):
        load_bfm(tmp_path / "BFM_model_front.mat")
    savemat(str(tmp_path / "similarity_Lm3D_all.mat"), {"lm": np.zeros((5, 3))})
    with pytest.raises(BFMFormatError, match=r"\[68, 3\]"):
        load_lm3d_template(tmp_path / "similarity_Lm3D_all.mat")


def test_template_is_eye_centres_nose_and_mouth_corners(fake_bfm):
    folder, _, _ = fake_bfm
    template = load_lm3d_template(folder / "similarity_Lm3D_all.mat")
    face = face_layout() * [1, -1, 1]
    face = face - face.mean(axis=0)
    np.testing.assert_allclose(template[0], (face[36] + face[39]) / 2)
    np.testing.assert_allclose(template[1], (face[42] + face[45]) / 2)
    np.testing.assert_allclose(template[2:], face[[30, 48, 54]])


def test_scale_translation_fit_recovers_a_known_camera():
    rng = np.random.default_rng(0)
    template = rng.standard_normal((5, 3))
    rot = Rotation.from_euler("xyz", [0.1, 0.2, -0.1]).as_matrix()[:2]
    points = 2.5 * template @ rot.T + [10.0, -4.0]
    t, s = fit_scale_translation(points, template)
    np.testing.assert_allclose(t, [10.0, -4.0], atol=1e-9)
    assert s == pytest.approx(2.5)


def test_face_crop_is_the_reference_quad_for_an_upright_face():
    _, face = fake_source(size=640, scale=120.0)
    lm = face.landmarks68.astype(np.float64)
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, d = (eye_l + eye_r) / 2, eye_r[0] - eye_l[0]
    m = (lm[48] + lm[54])[1] / 2 - eye_avg[1]
    half = max(2 * d, 1.8 * m)
    cx, cy = eye_avg[0], eye_avg[1] + 0.1 * m
    box = face_crop(lm, (640, 640))
    np.testing.assert_allclose([box.x0, box.y0, box.x1, box.y1], [cx - half, cy - half, cx + half, cy + half], atol=1.0)


def test_alignment_round_trip_lands_on_the_same_image_point():
    image, face = fake_source(size=400, scale=110.0)
    image = np.zeros_like(image)
    target = face.landmarks68[30].astype(np.float64) + [3.3, -2.6]  # a blob near the nose tip
    yy, xx = np.mgrid[0:400, 0:400]
    blob = np.exp(-((xx - target[0]) ** 2 + (yy - target[1]) ** 2) / (2 * 2.5 ** 2))
    image[...] = (255 * blob)[..., None].astype(np.uint8)
    template = five_points(face_layout() * [1, -1, 1])
    window, alignment = align_for_recon(image, face.landmarks68, template)
    assert window.shape == (224, 224, 3) and window.dtype == np.float32
    assert 0.0 <= window.min() and window.max() <= 1.0
    weight = window[..., 0] * (window[..., 0] > 0.3 * window[..., 0].max())
    vv, uu = np.mgrid[0:224, 0:224]
    found = np.array([(uu * weight).sum(), (vv * weight).sum()]) / weight.sum()  # blob centre in the 224 crop
    np.testing.assert_allclose(alignment.to_image(found), target, atol=1.0)
    # the 5-point fit centres the template's origin (layout (0, 0) = pixel (200, 210)) in the 224 crop ...
    np.testing.assert_allclose(alignment.to_image(np.array([112.0, 112.0])), [200.0, 210.0], atol=1.0)
    # ... and scales the face so that one template unit spans 102 crop pixels
    eyes = (alignment.crop.to_crop(five_points(face.landmarks68)[:2]) * alignment.scale)
    assert np.linalg.norm(eyes[1] - eyes[0]) == pytest.approx(102.0 * np.linalg.norm(template[1] - template[0]),
                                                              rel=1e-3)
