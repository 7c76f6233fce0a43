"""Trajectories: file format, PCHIP on the 384 grid, motion-brush split (paper Eq. 4, spec §2.3)."""

import json
import math

import cv2
import numpy as np
import pytest
import torch
from scipy.interpolate import PchipInterpolator

from mofa_engine.drag_hints import combine_brush_flows, scale_in_brush_flow, trajectory_sparse_flow
from mofa_engine.trajectories import (
    brush_to_grid,
    grid_trajectories,
    load_trajectories,
    parse_trajectories,
    pchip_resample,
    resample_trajectory,
    trajectory_displacements,
)
from mofa_engine.warp.drag_field import DragField

# ------------------------------------------------------------------ parsing


def test_parse_valid_file(tmp_path):
    path = tmp_path / "drags.json"
    path.write_text(json.dumps({"trajectories": [[[10, 20.5], [30, 40]], [[5, 5]]]}))
    trajs = load_trajectories(path, height=64, width=48)
    assert len(trajs) == 2
    np.testing.assert_array_equal(trajs[0], [[10.0, 20.5], [30.0, 40.0]])
    assert trajs[1].shape == (1, 2) and trajs[0].dtype == np.float64
    assert parse_trajectories({"trajectories": []}, 64, 48) == []


@pytest.mark.parametrize(
    "data, message",
    [
        ({"drags": []}, "'trajectories' key"),
        ({"trajectories": "nope"}, "must be a list"),
        ({"trajectories": [5]}, "trajectory 0 must be a list"),
        ({"trajectories": [[]]}, "trajectory 0 has no points"),
        ({"trajectories": [[[1, 2, 3]]]}, r"point 0 must be \[x, y\]"),
        ({"trajectories": [[[1, True]]]}, "must hold numbers"),
        ({"trajectories": [[[1, 2], [float("nan"), 3]]]}, "point 1 is not finite"),
        ({"trajectories": [[[1, 2]], [[48, 3]]]}, r"trajectory 1 point 0 = \(48.0, 3.0\) lies outside the 48x"),
        ({"trajectories": [[[1, -0.5]]]}, "outside"),
    ],
)
def test_parse_errors_name_the_offending_value(data, message):
    with pytest.raises(ValueError, match=message):
        parse_trajectories(data, height=64, width=48)


def test_load_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{trajectories: ")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_trajectories(path, 10, 10)


# ------------------------------------------------------------------ PCHIP on the grid


def test_pchip_on_truncated_grid_matches_scipy():
    points = np.array([[10.3, 20.7], [30.9, 25.2], [41.5, 50.8], [44.0, 60.1]])
    (grid,) = grid_trajectories([points], height=80, width=100, length=25)
    truncated = np.array([[int(x * 384 / 100), int(y * 384 / 80)] for x, y in points], dtype=float)
    np.testing.assert_array_equal(truncated[0], [39, 99])
    knots, query = np.linspace(0, 1, 4), np.linspace(0, 1, 25)
    expected = np.stack([PchipInterpolator(knots, truncated[:, c])(query) for c in (0, 1)], 1)
    np.testing.assert_allclose(grid, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(grid[0], truncated[0])  # the start is exact (its pixel is int(start))
    np.testing.assert_allclose(grid[-1], truncated[-1], atol=1e-9)  # the end up to rounding, like scipy


def test_one_point_trajectory_is_stationary():
    # the reference crashes here (PCHIP needs 2 nodes); a single click means "stay put"
    out = pchip_resample(np.array([[7.0, 9.0]]), 25)
    np.testing.assert_array_equal(out, np.tile([7.0, 9.0], (25, 1)))


def test_two_points_are_linear():
    out = pchip_resample(np.array([[0.0, 0.0], [8.0, -4.0]]), 5)
    np.testing.assert_allclose(out, [[0, 0], [2, -1], [4, -2], [6, -3], [8, -4]])


# ------------------------------------------------------------------ brush split and sparse flows


def _brush64() -> np.ndarray:
    brush = np.zeros((64, 64), np.uint8)
    brush[16:48, 16:48] = 255
    return brush


def test_brush_resize_is_bilinear_not_nearest():
    brush = _brush64()
    grid = brush_to_grid(brush, 64, 64)
    bilinear = cv2.resize(brush.astype(np.float32), (384, 384), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(grid, bilinear)
    assert ((grid > 0) & (grid < 255)).any()  # fractional border values, as in the reference
    nearest = cv2.resize(brush.astype(np.float32), (384, 384), interpolation=cv2.INTER_NEAREST)
    assert not np.array_equal(grid, nearest)
    np.testing.assert_array_equal(brush_to_grid(brush > 0, 64, 64), grid)  # bool brush = 255
    np.testing.assert_array_equal(brush_to_grid((brush > 0).astype(np.float32), 64, 64), grid)  # 0..1 brush


def test_brush_split_and_int64_truncation():
    brush = _brush64()
    grid = brush_to_grid(brush, 64, 64)
    rows, cols = np.nonzero((grid > 0) & (grid < 255))
    edge = (cols[0] + 0.5) * 64 / 384, (rows[0] + 0.5) * 64 / 384  # starts on a fractional brush pixel
    assert brush[int(edge[1]), int(edge[0])] in (0, 255)
    trajs = [
        np.array([[32.0, 32.0], [34.9, 29.0]]),  # in: grid (192,192) -> (209, 174)
        np.array([[5.0, 5.0], [4.0, 7.0]]),  # out: grid (30, 30) -> (24, 42)
        np.array([[5.0, 5.0], [6.0, 5.0]]),  # out, same start: summed
        np.array([edge, [edge[0] + 3, edge[1]]]),  # fractional brush value: not exactly 255 -> out
    ]
    flow_in, mask_in, flow_out, mask_out = trajectory_sparse_flow(trajs, brush, 64, 64, length=5)
    assert flow_in.shape == mask_in.shape == flow_out.shape == (4, 2, 384, 384)
    # in group: linear path (17, -18) * t at t = .25, .5, .75, 1, each truncated toward zero
    expected = torch.tensor([[4.0, -4.0], [8.0, -9.0], [12.0, -13.0], [17.0, -18.0]])
    torch.testing.assert_close(flow_in[:, :, 192, 192], expected)
    assert mask_in.sum() == 4 * 2 and mask_in[:, :, 192, 192].eq(1).all()
    # out group: (-6, 12) * t and (6, 0) * t summed at (30, 30), mask 2
    expected_out = torch.tensor([[-1.0 + 1.0, 3.0], [-3.0 + 3.0, 6.0], [-4.0 + 4.0, 9.0], [0.0, 12.0]])
    torch.testing.assert_close(flow_out[:, :, 30, 30], expected_out)
    assert mask_out[:, :, 30, 30].eq(2).all()
    edge_grid = int(edge[1] * 6), int(edge[0] * 6)
    assert mask_out[0, 0][edge_grid] == 1 and mask_in[0, 0][edge_grid] == 0
    # no brush: everything out
    flow_in, mask_in, flow_out, _ = trajectory_sparse_flow(trajs, None, 64, 64, length=5)
    assert mask_in.sum() == 0 and flow_out[:, :, 192, 192].abs().sum() > 0


def test_dense_rules():
    flow_in = torch.zeros(1, 2, 2, 2)
    flow_in[0, :, 0, 0] = torch.tensor([1.0, 2.0])  # both channels nonzero -> taken
    flow_in[0, :, 0, 1] = torch.tensor([3.0, 0.0])  # one channel zero -> flow_out
    flow_out = torch.full((1, 2, 2, 2), -5.0)
    combined = combine_brush_flows(flow_in, flow_out)
    torch.testing.assert_close(combined[0, :, 0, 0], torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(combined[0, :, 0, 1], torch.tensor([-5.0, -5.0]))
    torch.testing.assert_close(combined[0, :, 1, 1], torch.tensor([-5.0, -5.0]))
    brush = np.array([[255.0, 127.5], [0.0, 51.0]], np.float32)
    scaled = scale_in_brush_flow(torch.ones(3, 2, 2, 2), brush)
    torch.testing.assert_close(scaled[1, 0], torch.tensor([[1.0, 0.5], [0.0, 0.2]]))


# ------------------------------------------------------------------ warp engine: any length, pixels


def test_resample_to_clip_length_in_pixels():
    path = resample_trajectory(np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 30.0]]), 9)
    assert path.shape == (9, 2)
    np.testing.assert_allclose(path[[0, 4, 8]], [[10, 10], [20, 10], [20, 30]])  # no grid truncation
    starts, disp = trajectory_displacements([np.array([[1.5, 2.5]]), np.array([[0.0, 0.0], [3.0, 4.0]])], 4)
    np.testing.assert_array_equal(starts, [[1.5, 2.5], [0.0, 0.0]])
    assert disp.shape == (4, 2, 2) and np.all(disp[:, 0] == 0) and np.all(disp[0] == 0)
    np.testing.assert_allclose(disp[-1, 1], [3, 4])


def test_drag_field_bump_and_brush():
    drag = [np.array([[40.0, 40.0], [50.0, 44.0]])]
    field = DragField(drag, None, num_frames=3, height=128, width=128)
    moved = field.forward(np.array([[40.0, 40.0], [120.0, 120.0]]), 2)
    np.testing.assert_allclose(moved[0], [10, 4], atol=1e-9)  # the start moves by the drag
    assert np.abs(moved[1]).max() < 0.01  # far away: still
    back = field.backward(np.array([[50.0, 44.0]]), 2)
    assert np.linalg.norm(np.array([50.0, 44.0]) + back[0] - [40, 40]) < 1.0  # output end samples the start
    brush = np.zeros((128, 128), bool)
    brush[20:70, 20:70] = True
    field = DragField(drag, brush, num_frames=3, height=128, width=128)
    moved = field.forward(np.array([[68.0, 21.0], [100.0, 100.0]]), 2)
    np.testing.assert_allclose(moved[0], [10, 4], atol=0.05)  # anywhere inside the brush
    assert np.abs(moved[1]).max() < 1e-3  # outside: still
    assert math.isclose(float(np.abs(field.forward(np.zeros((1, 2)), 0)).max()), 0.0)  # frame 0
