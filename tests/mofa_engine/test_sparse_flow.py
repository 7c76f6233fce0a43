"""Keypoint sparse flow (paper Eq. 2, spec §2.1), the 384 grid and the way back (§2.4)."""

import numpy as np
import pytest
import torch

from mofa_engine.sparse_flow import (
    flow_from_grid,
    keypoint_sparse_flow,
    keypoint_sparse_flow_384,
    rescale_to_grid,
)


def test_hand_computed_flow_and_mask():
    # 3 frames, 2 landmarks on a 5 (rows) x 6 (cols) grid
    landmarks = np.array([
        [[1.7, 3.2], [4.0, 0.9]],  # reference: pixels (row 3, col 1) and (row 0, col 4)
        [[2.7, 1.2], [4.5, 0.9]],  # d = (1, -2), (0.5, 0)
        [[1.2, 3.2], [3.0, 2.9]],  # d = (-0.5, 0), (-1, 2)
    ], dtype=np.float32)
    flow, mask = keypoint_sparse_flow(landmarks, height=5, width=6)
    assert flow.shape == mask.shape == (2, 2, 5, 6)
    assert flow.dtype == mask.dtype == torch.float32
    expected = torch.zeros(2, 2, 5, 6)
    expected[0, :, 3, 1] = torch.tensor([1.0, -2.0])  # channel 0 = dx, channel 1 = dy
    expected[0, :, 0, 4] = torch.tensor([0.5, 0.0])
    expected[1, :, 3, 1] = torch.tensor([-0.5, 0.0])
    expected[1, :, 0, 4] = torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(flow, expected)
    expected_mask = torch.zeros(2, 2, 5, 6)
    expected_mask[:, :, 3, 1] = 1.0
    expected_mask[:, :, 0, 4] = 1.0
    torch.testing.assert_close(mask, expected_mask)


def test_truncation_toward_zero_and_clamping():
    reference = [[-0.7, 2.9], [5.99, -3.0], [100.0, 100.0], [2.999, 4.999]]
    landmarks = np.array([reference, np.array(reference) + [1.0, 1.0]], dtype=np.float64)
    _, mask = keypoint_sparse_flow(landmarks, height=5, width=6)
    rows, cols = torch.nonzero(mask[0, 0], as_tuple=True)
    pixels = set(zip(rows.tolist(), cols.tolist(), strict=True))
    # int(-0.7) = 0 (toward zero, not floor -1); 5.99 -> 5; -3 -> clamp 0; 100 -> clamp (4, 5); 4.999 -> 4
    assert pixels == {(2, 0), (0, 5), (4, 5), (4, 2)}


def test_duplicates_last_landmark_wins():
    landmarks = torch.tensor([[[2.2, 1.1], [2.9, 1.8]], [[3.2, 1.1], [2.9, 4.8]]])
    flow, mask = keypoint_sparse_flow(landmarks, height=4, width=5)
    assert mask.sum() == 2  # one pixel, both channels
    torch.testing.assert_close(flow[0, :, 1, 2], torch.tensor([0.0, 3.0]))  # landmark 1, not 0


def test_numpy_and_torch_agree_and_single_frame():
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(0, 30, size=(4, 68, 2)).astype(np.float32)
    a = keypoint_sparse_flow(landmarks, 32, 32)
    b = keypoint_sparse_flow(torch.from_numpy(landmarks), 32, 32)
    torch.testing.assert_close(a, b)
    flow, mask = keypoint_sparse_flow(landmarks[:1], 32, 32)
    assert flow.shape == mask.shape == (0, 2, 32, 32)


def test_sparse_values_sum_to_displacements():
    rng = np.random.default_rng(1)
    ref = np.stack(np.meshgrid(np.arange(4, 60, 7), np.arange(4, 60, 7)), -1).reshape(-1, 2) + 0.5
    landmarks = np.stack([ref, ref + rng.normal(size=ref.shape)]).astype(np.float32)  # distinct pixels
    flow, mask = keypoint_sparse_flow(landmarks, 64, 64)
    torch.testing.assert_close(flow.sum(dim=(2, 3))[0], torch.from_numpy(landmarks[1] - landmarks[0]).sum(0))
    assert mask.sum() == 2 * len(ref)


@pytest.mark.parametrize("bad", [np.zeros((3, 68)), np.zeros((3, 68, 3)), np.zeros((0, 68, 2))])
def test_bad_shapes_raise(bad):
    with pytest.raises(ValueError):
        keypoint_sparse_flow(bad, 8, 8)


def test_non_finite_raises():
    landmarks = np.zeros((2, 68, 2), np.float32)
    landmarks[1, 5, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        keypoint_sparse_flow(landmarks, 8, 8)


def test_rescale_to_grid_and_384_flow():
    landmarks = np.array([[[256.0, 128.0]], [[266.0, 118.0]]], dtype=np.float32)  # image 512 (H) x 768 (W)
    grid = rescale_to_grid(landmarks, height=512, width=768)
    torch.testing.assert_close(grid[0, 0], torch.tensor([256.0 / 768 * 384, 128.0 / 512 * 384]))
    flow, mask = keypoint_sparse_flow_384(landmarks, height=512, width=768)
    assert flow.shape == (1, 2, 384, 384)
    assert mask[0, 0, 96, 128] == 1  # int(128 / 512 * 384) = 96, int(256 / 768 * 384) = 128
    torch.testing.assert_close(flow[0, :, 96, 128], torch.tensor([10 / 768 * 384, -10 / 512 * 384]))


def test_flow_from_grid_nearest_and_scaled():
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, 0] = torch.arange(16.0).view(4, 4)  # dx
    flow[0, 1] = 1.0  # dy
    up = flow_from_grid(flow, height=8, width=6)
    assert up.shape == (1, 2, 8, 6)
    cols = [int(np.floor(c * 4 / 6)) for c in range(6)]
    rows = [int(np.floor(r * 4 / 8)) for r in range(8)]
    expected_dx = flow[0, 0][rows][:, cols] * (6 / 4)
    torch.testing.assert_close(up[0, 0], expected_dx)
    torch.testing.assert_close(up[0, 1], torch.full((8, 6), 8 / 4))
    assert flow_from_grid(flow[None], 8, 6).shape == (1, 1, 2, 8, 6)  # extra leading dims kept
