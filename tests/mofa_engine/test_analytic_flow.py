"""Warp engine sparse-to-dense: exact at landmarks, still background, never folding."""

import cv2
import numpy as np
import pytest
import torch

from mofa_engine.warp.analytic_flow import AnalyticFlow, AnalyticFlowOptions
from mofa_engine.regions import face_region_mask

SIZE = 384


def synthetic_face(size=SIZE, jaw_open=0.0, blink=0.0, yaw=0.0, pitch=0.0, roll=0.0, shift=(0.0, 0.0)):
    """68 iBUG points (x, y pixels) of a frontal face, mouth closed, with optional motion.

    jaw_open: 1 drops the chin by ~a quarter of the face height (fully open); blink: 1 puts the upper
    lids on the lower ones; yaw/pitch/roll: degrees, rotated in 3D about a pivot behind the face.
    """
    cx, cy, s = size * 0.5, size * 0.53, size * 0.47  # s: jaw 0 -> 16 width in px
    pts = np.zeros((68, 3))
    for i in range(17):  # jaw: ear -> chin -> ear
        a = np.pi * i / 16
        pts[i] = [-0.5 * np.cos(a), -0.05 + 0.67 * np.sin(a) ** 1.2, 0.35 - 0.3 * np.sin(a)]
    for j in range(5):  # brows
        f = j / 4
        pts[17 + j] = [-0.42 + 0.32 * f, -0.22 - 0.05 * np.sin(np.pi * f), 0.12]
        pts[26 - j] = [0.42 - 0.32 * f, -0.22 - 0.05 * np.sin(np.pi * f), 0.12]
    for j in range(4):  # nose bridge
        pts[27 + j] = [0, -0.14 + 0.1 * j, 0.05 - 0.06 * j]
    for j in range(5):  # nostrils
        pts[31 + j] = [-0.09 + 0.045 * j, 0.2 + 0.02 * (1 - abs(j - 2) / 2), -0.12]
    eye = [[-0.1, 0], [-0.033, -0.035], [0.033, -0.035], [0.1, 0], [0.033, 0.0315], [-0.033, 0.0315]]
    for first, centre in ((36, -0.2), (42, 0.2)):
        for k, (x, y) in enumerate(eye):
            pts[first + k] = [centre + x, -0.1 + y, 0.05]
    outer = [[-0.16, 0.35], [-0.1, 0.32], [-0.04, 0.3], [0, 0.31], [0.04, 0.3], [0.1, 0.32], [0.16, 0.35],
             [0.1, 0.4], [0.05, 0.42], [0, 0.425], [-0.05, 0.42], [-0.1, 0.4]]
    inner = [[-0.13, 0.35], [-0.05, 0.345], [0, 0.345], [0.05, 0.345], [0.13, 0.35],
             [0.05, 0.345], [0, 0.345], [-0.05, 0.345]]  # closed mouth: inner lips coincide
    pts[48:60, :2], pts[48:60, 2] = outer, -0.08
    pts[60:68, :2], pts[60:68, 2] = inner, -0.07
    drop = 0.22 * jaw_open
    for i in range(3, 14):
        pts[i, 1] += drop * np.sin(np.pi * (i - 2) / 12) ** 2
    pts[[55, 56, 57, 58, 59, 65, 66, 67], 1] += 0.9 * drop
    pts[[48, 54, 60, 64], 1] += 0.35 * drop
    for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46)):
        pts[up, 1] += blink * (pts[lo, 1] - pts[up, 1])
    c, sn = np.cos(np.radians([yaw, pitch, roll])), np.sin(np.radians([yaw, pitch, roll]))
    rot_y = np.array([[c[0], 0, sn[0]], [0, 1, 0], [-sn[0], 0, c[0]]])
    rot_x = np.array([[1, 0, 0], [0, c[1], -sn[1]], [0, sn[1], c[1]]])
    rot_z = np.array([[c[2], -sn[2], 0], [sn[2], c[2], 0], [0, 0, 1]])
    pivot = np.array([0, 0.1, 0.45])
    pts = (pts - pivot) @ (rot_z @ rot_x @ rot_y).T + pivot
    return np.stack([cx + s * pts[:, 0] + shift[0], cy + s * pts[:, 1] + shift[1]], 1).astype(np.float32)


REFERENCE = synthetic_face()

# extreme but plausible motions (mouth closed in the reference, as in most portraits)
EXTREMES = {
    "jaw_fully_open": dict(jaw_open=1.0),
    "blink": dict(blink=1.0),
    "yaw_left": dict(yaw=-20),
    "yaw_right": dict(yaw=20),
    "pitch_up": dict(pitch=-20),
    "pitch_down": dict(pitch=20),
    "roll": dict(roll=20),
    "shifted": dict(shift=(25, -15)),
    "everything": dict(jaw_open=1.0, blink=1.0, yaw=20, pitch=-15, roll=10, shift=(15, 10)),
}


@pytest.fixture(scope="module")
def flow() -> AnalyticFlow:
    return AnalyticFlow(REFERENCE, SIZE, SIZE)


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.ascontiguousarray(points, np.float32)
    return cv2.remap(image, pts[None, :, 0], pts[None, :, 1], cv2.INTER_LINEAR)[0]


def _min_jacobian(map_x: np.ndarray, map_y: np.ndarray) -> float:
    """Smallest forward-difference Jacobian determinant of a backward map over the whole image."""
    dxx, dxy = np.diff(map_x, axis=1)[:-1], np.diff(map_x, axis=0)[:, :-1]
    dyx, dyy = np.diff(map_y, axis=1)[:-1], np.diff(map_y, axis=0)[:, :-1]
    return float((dxx * dyy - dxy * dyx).min())


def test_identity_is_zero_displacement(flow):
    map_x, map_y = flow.backward_map(REFERENCE)
    assert map_x.shape == map_y.shape == (SIZE, SIZE) and map_x.dtype == np.float32
    grid_y, grid_x = np.mgrid[0:SIZE, 0:SIZE]
    assert np.abs(map_x - grid_x).max() < 1e-3 and np.abs(map_y - grid_y).max() < 1e-3
    assert flow.forward_flow(REFERENCE[None]).abs().max() < 1e-2


def test_translation_moves_the_face_and_not_the_background(flow):
    t = np.array([12.0, -8.0])
    fused = flow.backward_map(REFERENCE + t.astype(np.float32), fused=True)
    grid = np.stack(np.meshgrid(np.arange(SIZE), np.arange(SIZE)), -1)
    disp = fused - grid  # B(y) - y: the face at y shows the portrait at y - t
    moved_face = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(moved_face, cv2.convexHull(np.round(REFERENCE[:27] + t).astype(np.int32)), 1)
    assert np.abs(disp[moved_face > 0] + t).max() < 0.5
    far = face_region_mask(REFERENCE, SIZE, SIZE, feather=0) == 0
    far = cv2.erode(far.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(0.25 * SIZE) // 2) > 0
    assert far.sum() > 0.1 * SIZE * SIZE
    assert np.linalg.norm(disp[far], axis=-1).max() < 0.5  # far background: still
    background = face_region_mask(REFERENCE, SIZE, SIZE, feather=0) == 0
    assert np.linalg.norm(disp[background], axis=-1).mean() < 1.0  # 12 px head motion


@pytest.mark.parametrize("name", list(EXTREMES))
def test_backward_map_never_folds(flow, name):
    map_x, map_y = flow.backward_map(synthetic_face(**EXTREMES[name]))
    assert np.isfinite(map_x).all() and np.isfinite(map_y).all()
    assert _min_jacobian(map_x, map_y) > 0.01, name


def test_noisy_landmarks_do_not_fold(flow):
    rng = np.random.default_rng(3)
    for _ in range(3):  # a bad tracker: every point off by ~4 px
        noisy = synthetic_face(jaw_open=0.5, yaw=10) + rng.normal(0, 4, size=(68, 2)).astype(np.float32)
        assert _min_jacobian(*flow.backward_map(noisy)) > 0.0


@pytest.mark.parametrize("name", ["yaw_right", "pitch_down", "roll", "shifted"])
def test_target_landmarks_sample_reference_landmarks(flow, name):
    target = synthetic_face(**EXTREMES[name])
    map_x, map_y = flow.backward_map(target)
    sampled = np.stack([_sample(map_x, target), _sample(map_y, target)], 1)
    assert np.linalg.norm(sampled - REFERENCE, axis=1).max() < 1.5


def test_talking_frame_is_exact_at_landmarks(flow):
    # half-open mouth from a closed one: inner lips (60-67) map onto the lip line up to a sliver
    target = synthetic_face(jaw_open=0.4, blink=0.5, yaw=6, pitch=4)
    map_x, map_y = flow.backward_map(target)
    err = np.linalg.norm(np.stack([_sample(map_x, target), _sample(map_y, target)], 1) - REFERENCE, axis=1)
    assert np.median(err) < 0.3 and err[:60].max() < 1.5 and err[60:].max() < 5.0


@pytest.mark.parametrize("amount, closed", [(0.0, False), (0.5, False), (1.0, True)])
def test_blink_hides_the_eye(flow, amount, closed):
    map_x, map_y = flow.backward_map(synthetic_face(blink=amount))
    eye = REFERENCE[36:42]
    x0, x1, y0, y1 = int(eye[:, 0].min()), int(eye[:, 0].max()) + 1, int(eye[:, 1].min()) - 10, int(eye[:, 1].max()) + 10
    src_x, src_y = map_x[y0:y1, x0:x1], map_y[y0:y1, x0:x1]
    top, bottom = eye[[1, 2], 1].mean(), eye[[4, 5], 1].mean()
    centre = ((src_y > top + 0.3 * (bottom - top)) & (src_y < bottom - 0.3 * (bottom - top))
              & (src_x > eye[1, 0]) & (src_x < eye[2, 0]))
    assert (centre.sum() == 0) == closed  # output pixels showing the middle of the eye


def test_opened_mouth_shows_a_sliver_of_the_lips(flow):
    target = synthetic_face(jaw_open=1.0)  # the reference's mouth is closed
    map_x, map_y = flow.backward_map(target)
    column = int(round(target[62, 0]))
    inside = slice(int(np.ceil(target[62, 1])) + 1, int(target[66, 1]))  # rows of the opened mouth
    sources = map_y[inside, column]
    assert np.all(np.diff(sources) > 0)  # still increasing: no fold
    assert np.ptp(sources) < 0.25 * (target[66, 1] - target[62, 1])  # squeezed from the lip line


def test_forward_flow_matches_landmark_displacements(flow):
    targets = np.stack([synthetic_face(yaw=10, pitch=5), synthetic_face(jaw_open=0.3, roll=8, shift=(5, 3))])
    flows = flow.forward_flow(targets)
    assert flows.shape == (2, 2, SIZE, SIZE) and flows.dtype == torch.float32
    for t in range(2):
        f = flows[t].numpy()
        at_ref = np.stack([_sample(f[0], REFERENCE), _sample(f[1], REFERENCE)], 1)
        err = np.linalg.norm(at_ref - (targets[t] - REFERENCE), axis=1)[:60]  # inner lips coincide
        assert np.median(err) < 0.5 and err.max() < 1.5


def test_batched_equals_per_frame(flow):
    targets = np.stack([synthetic_face(yaw=5), synthetic_face(blink=1.0)])
    map_x, map_y = flow.backward_map(targets)
    assert map_x.shape == (2, SIZE, SIZE)
    single_x, single_y = flow.backward_map(targets[1])
    np.testing.assert_array_equal(map_x[1], single_x)
    np.testing.assert_array_equal(map_y[1], single_y)
    fused = flow.backward_map(targets, fused=True)
    np.testing.assert_array_equal(fused[..., 0], map_x)


def test_region_mask_limits_the_motion():
    region = np.zeros((SIZE, SIZE), np.float32)
    cv2.fillConvexPoly(region, cv2.convexHull(REFERENCE.astype(np.int32)), 1.0)
    flow = AnalyticFlow(REFERENCE, SIZE, SIZE, region_mask=region)
    fused = flow.backward_map(REFERENCE + np.float32([10, 0]), fused=True)
    disp = fused - np.stack(np.meshgrid(np.arange(SIZE), np.arange(SIZE)), -1)
    assert np.abs(disp[:40]).max() < 0.5  # above the face: no hair region any more, still


def test_drags_move_their_region():
    start, end = np.array([60.0, 60.0]), np.array([72.0, 52.0])  # top-left background
    flow = AnalyticFlow(REFERENCE, SIZE, SIZE, trajectories=[np.stack([start, end])], num_frames=5)
    with pytest.raises(ValueError, match="frame_index"):
        flow.backward_map(REFERENCE)
    map_x, map_y = flow.backward_map(REFERENCE, frame_index=4)
    sampled = np.array([_sample(map_x, end[None])[0], _sample(map_y, end[None])[0]])
    assert np.linalg.norm(sampled - start) < 1.5  # the output end shows the start
    assert _min_jacobian(map_x, map_y) > 0.01
    map_x, _ = flow.backward_map(REFERENCE, frame_index=0)
    assert np.abs(map_x - np.arange(SIZE)[None]).max() < 1e-3
    brush = np.zeros((SIZE, SIZE), bool)
    brush[30:100, 30:100] = True
    flow = AnalyticFlow(REFERENCE, SIZE, SIZE, trajectories=[np.stack([start, end])], brush=brush, num_frames=5)
    map_x, map_y = flow.backward_map(REFERENCE, frame_index=4)
    corner = np.array([100.0, 35.0]) + (end - start)  # where the brush's corner went
    sampled = np.array([_sample(map_x, corner[None])[0], _sample(map_y, corner[None])[0]])
    assert np.linalg.norm(sampled - [100.0, 35.0]) < 1.5


def test_example_portrait_never_folds(portrait_landmarks, analytic_flow):
    ref = portrait_landmarks.astype(np.float64)
    centre, height = ref.mean(0), ref[8, 1] - ref[17:27, 1].mean()
    jaw = ref.copy()
    jaw[3:14, 1] += 0.22 * height * np.sin(np.pi * (np.arange(3, 14) - 2) / 12) ** 2
    jaw[[55, 56, 57, 58, 59, 65, 66, 67], 1] += 0.2 * height
    blink = ref.copy()
    blink[[37, 38, 43, 44]] = ref[[41, 40, 47, 46]]
    angle = np.radians(15)
    roll = (ref - centre) @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) + centre
    for target in (jaw, blink, roll, roll + [10, -6], (jaw + blink + roll) / 3):
        map_x, map_y = analytic_flow.backward_map(target.astype(np.float32))
        assert _min_jacobian(map_x, map_y) > 0.01


def test_bad_inputs():
    with pytest.raises(ValueError, match="reference"):
        AnalyticFlow(np.zeros((67, 2)), SIZE, SIZE)
    flow = AnalyticFlow(REFERENCE, SIZE, SIZE)
    with pytest.raises(ValueError, match="points"):
        flow.backward_map(np.full((68, 2), np.nan))
    with pytest.raises(ValueError, match="region_mask"):
        AnalyticFlow(REFERENCE, SIZE, SIZE, region_mask=np.ones((4, 4)))
    with pytest.raises(ValueError, match="gap_ratio"):
        AnalyticFlowOptions(gap_ratio=0.5)
