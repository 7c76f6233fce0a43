"""Camera moves: names, amounts, the transform, its flows and maps, and the drags for trajectory hints."""

import cv2
import numpy as np
import pytest

from mofa_engine.camera import CAMERA_NAMES, CameraMove, parse_camera

H, W = 96, 128
CENTRE = np.array([(W - 1) / 2, (H - 1) / 2])


def test_parse_names_amounts_and_defaults():
    assert CameraMove.parse("zoom-in") == CameraMove("zoom-in", 0.15)
    assert CameraMove.parse(" pan-left:0.2 ") == CameraMove("pan-left", 0.2)
    assert CameraMove.parse("rotate-cw:10").amount == 10.0
    assert str(CameraMove.parse("rotate-ccw")) == "rotate-ccw:5"
    assert parse_camera(None) is None and parse_camera("") is None
    assert len(CAMERA_NAMES) == 8


@pytest.mark.parametrize("spec, words", [("dolly", "must be one of"), ("zoom-in:big", "must be a number"),
                                         ("zoom-in:0", "(0, 1]"), ("pan-up:0.9", "(0, 0.5]"),
                                         ("rotate-cw:nan", "(0, 45]"), ("rotate-cw:-3", "(0, 45]")])
def test_bad_specs_name_the_problem(spec, words):
    with pytest.raises(ValueError, match=None) as err:
        CameraMove.parse(spec)
    assert words in str(err.value)


def test_long_bad_names_are_not_echoed_in_full():
    with pytest.raises(ValueError) as err:
        CameraMove.parse("x" * 10_000)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("name", CAMERA_NAMES)
def test_identity_at_the_start_and_eased(name):
    move = CameraMove(name)
    pts = np.array([[3.0, 4.0], [100.0, 70.0]])
    assert np.allclose(move.apply(pts, 0.0, H, W), pts)
    assert CameraMove.progress(0, 25) == 0 and CameraMove.progress(24, 25) == 1
    assert 0.45 < CameraMove.progress(12, 25) < 0.55 and CameraMove.progress(1, 25) < 1 / 24  # eased in


def test_each_move_goes_where_its_name_says():
    corner = np.array([10.0, 10.0])
    zin = CameraMove("zoom-in", 0.2).apply(corner, 1.0, H, W)
    assert np.allclose(zin - CENTRE, 1.2 * (corner - CENTRE))
    zout = CameraMove("zoom-out", 0.2).apply(corner, 1.0, H, W)
    assert np.allclose(zout - CENTRE, (corner - CENTRE) / 1.2)
    assert np.allclose(CameraMove("zoom-in").apply(CENTRE, 1.0, H, W), CENTRE)  # the centre stays
    # the camera turns left: the picture slides right by amount x width
    assert np.allclose(CameraMove("pan-left", 0.1).apply(corner, 1.0, H, W) - corner, [0.1 * W, 0])
    assert np.allclose(CameraMove("pan-right", 0.1).apply(corner, 1.0, H, W) - corner, [-0.1 * W, 0])
    assert np.allclose(CameraMove("pan-up", 0.1).apply(corner, 1.0, H, W) - corner, [0, 0.1 * H])
    assert np.allclose(CameraMove("pan-down", 0.1).apply(corner, 1.0, H, W) - corner, [0, -0.1 * H])
    # clockwise on screen (y down): a point right of the centre moves down, one above it moves right
    right, above = CENTRE + [30, 0], CENTRE + [0, -30]
    cw = CameraMove("rotate-cw", 10)
    assert cw.apply(right, 1.0, H, W)[1] > right[1] + 5 and cw.apply(above, 1.0, H, W)[0] > above[0] + 5
    ccw = CameraMove("rotate-ccw", 10)
    assert ccw.apply(right, 1.0, H, W)[1] < right[1] - 5
    turned = cw.apply(right, 1.0, H, W) - CENTRE
    assert np.isclose(np.degrees(np.arctan2(turned[1], turned[0])), 10.0)


@pytest.mark.parametrize("name", CAMERA_NAMES)
def test_maps_invert_the_move_and_flows_agree(name):
    move = CameraMove(name)
    map_x, map_y = move.backward_map(0.7, H, W)
    ys, xs = np.mgrid[0:H, 0:W]
    back = move.apply(np.stack([map_x, map_y], -1), 0.7, H, W)  # C(C^-1(y)) = y
    assert np.abs(back - np.stack([xs, ys], -1)).max() < 1e-3
    flow = move.flow(0.7, H, W)
    assert flow.shape == (2, H, W) and flow.dtype == np.float32
    assert np.allclose(move.compose_flow(np.zeros((2, H, W), np.float32), 0.7), flow, atol=1e-4)
    # a warp's maps composed with the camera: the identity warp gives the camera's own maps
    cx, cy = move.compose_maps(xs.astype(np.float32), ys.astype(np.float32), 0.7)
    inside = (map_x >= 0) & (map_x <= W - 1) & (map_y >= 0) & (map_y <= H - 1)
    # cv2.remap interpolates at 1/32 px
    assert np.abs(cx - map_x)[inside].max() < 0.04 and np.abs(cy - map_y)[inside].max() < 0.04


def test_compose_flow_applies_the_camera_after_the_flow():
    flow = np.zeros((2, H, W), np.float32)
    flow[0] += 5.0  # everything moves 5 px right, then the camera pans the picture 0.1 W right
    out = CameraMove("pan-left", 0.1).compose_flow(flow, 1.0)
    assert np.allclose(out[0], 5.0 + 0.1 * W) and np.allclose(out[1], 0.0)


@pytest.mark.parametrize("name", CAMERA_NAMES)
def test_drags_follow_the_move_and_stay_in_the_frame(name):
    move = CameraMove(name)
    drags = move.drags(25, H, W, grid=6)
    assert 16 <= len(drags) <= 36
    for path in drags:
        assert path.shape == (25, 2)
        assert (path[:, 0] >= 0).all() and (path[:, 0] < W).all() and (path[:, 1] >= 0).all() and (path[:, 1] < H).all()
        assert np.allclose(path[-1], move.apply(path[0], 1.0, H, W))
        assert np.allclose(path[12], move.apply(path[0], CameraMove.progress(12, 25), H, W))


@pytest.mark.parametrize("name", CAMERA_NAMES)
def test_measured_flow_of_a_moved_picture_matches_the_pattern(name):
    """Farneback optical flow between a textured picture and its camera-moved copy equals `flow()`."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (H, W)).astype(np.float32), (0, 0), 3.0)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    move = CameraMove(name, 0.05 if name.startswith("pan") else None)  # Farneback's reach: ~8 px here
    map_x, map_y = move.backward_map(1.0, H, W)
    moved = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    measured = cv2.calcOpticalFlowFarneback(texture, moved, None, 0.5, 4, 21, 5, 7, 1.5, 0).transpose(2, 0, 1)
    expected = move.flow(1.0, H, W)
    core = (slice(20, H - 20), slice(24, W - 24))  # away from what enters over the border
    err = np.linalg.norm(measured[:, core[0], core[1]] - expected[:, core[0], core[1]], axis=0)
    assert np.median(err) < 0.5, np.median(err)
    assert np.abs(expected[:, core[0], core[1]]).max() > 3  # a move this test could miss is not tested


def test_drags_pad_to_a_longer_length_with_the_end_point():
    move = CameraMove("pan-right", 0.1)
    drags = move.drags(10, H, W, grid=4, length=25)
    assert drags and all(d.shape == (25, 2) for d in drags)
    assert all(np.allclose(d[9:], d[9]) for d in drags)
    assert np.allclose(drags[0][9], move.apply(drags[0][0], 1.0, H, W))
    with pytest.raises(ValueError, match="length >= num_frames"):
        move.drags(10, H, W, length=5)
