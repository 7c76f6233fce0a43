"""Drag hints on demand (`drag_hints.py`) equal the reference's clip-long Eq. 4 sparse flows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mofa_engine.drag_hints import DragHints, drag_groups, trajectory_sparse_flow
from mofa_engine.trajectories import grid_trajectories

SIZE = 64


def test_drag_hints_equal_the_reference_sparse_flows_and_span_long_clips():
    rng = np.random.default_rng(0)
    drags = [rng.uniform(0, 63, size=(n, 2)) for n in (1, 2, 4, 3)] + [np.array([[10.0, 10.0], [40.0, 50.0]])] * 2
    brush = np.zeros((SIZE, SIZE), bool)
    brush[:32] = True
    inside, outside, grid = drag_groups(drags, brush, SIZE, SIZE, num_frames=25)
    assert grid.shape == (384, 384)
    ref = trajectory_sparse_flow(drags, brush, SIZE, SIZE)  # in-flow, in-mask, out-flow, out-mask at 25 points
    frames = torch.arange(1, 25)
    for hints, flow, mask in ((inside, ref[0], ref[1]), (outside, ref[2], ref[3])):
        assert torch.equal(hints.flow(frames), flow) and torch.equal(hints.mask(frames), mask)
    # a 60-frame clip: every drag is sampled to 60 points, so frame 59 holds its end
    none_in, long_out, no_brush = drag_groups(drags[4:5], None, SIZE, SIZE, num_frames=60)
    assert none_in is None and no_brush is None
    (path,) = grid_trajectories(drags[4:5], SIZE, SIZE, 60)
    hint = long_out.flow(torch.tensor([59]))
    start = (int(path[0, 1]), int(path[0, 0]))
    assert hint[0, :, start[0], start[1]].tolist() == np.trunc(path[-1] - path[0]).tolist() == [180.0, 240.0]
    assert long_out.length == 60
    with pytest.raises(ValueError, match="paths"):
        DragHints(np.zeros((0, 25, 2)))
