"""The warp engine's fast path (field, spline and remap on the motion's support box, the map composed on
that box alone) equals the whole-image computation, bit for bit, on head turns, a jaw drop, a blink and a
smile."""

from __future__ import annotations

import numpy as np
import pytest

from mofa_engine.warp.analytic_flow import AnalyticFlow, AnalyticFlowOptions
from mofa_engine.warp.warp_renderer import WarpRenderer

from .test_warp_renderer import blink, open_mouth


def _targets(reference: np.ndarray) -> dict[str, np.ndarray]:
    centre = reference.mean(0)
    turn = np.radians(8.0)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]], np.float32)
    smile = reference.copy()
    smile[[48, 60]] += (-3.0, -2.0)
    smile[[54, 64]] += (3.0, -2.0)
    return {
        "still": reference.copy(),
        "roll and shift": ((reference - centre) @ rot.T + centre + (6.0, -4.0)).astype(np.float32),
        "big shift": reference + np.float32([25.0, 12.0]),
        "jaw drop": open_mouth(reference, 14.0),
        "blink": blink(reference, 1.0),
        "smile": smile,
    }


@pytest.fixture(scope="module")
def flows(portrait_rgb, portrait_landmarks):
    h, w = portrait_rgb.shape[:2]
    fast = AnalyticFlow(portrait_landmarks, h, w)
    exact = AnalyticFlow(portrait_landmarks, h, w, options=AnalyticFlowOptions(support_only=False))
    return fast, exact


@pytest.mark.parametrize("name", ["still", "roll and shift", "big shift", "jaw drop", "blink", "smile"])
def test_fast_path_equals_the_whole_image_computation(flows, portrait_rgb, portrait_landmarks, name):
    fast, exact = flows
    target = _targets(portrait_landmarks)[name]
    local, (x0, y0, x1, y1) = fast.backward_map_box(target)
    reference_map = exact.backward_map(target, fused=True)
    assert local.shape == (y1 - y0, x1 - x0, 2)
    np.testing.assert_array_equal(local, reference_map[y0:y1, x0:x1])
    np.testing.assert_array_equal(fast.backward_map(target, fused=True), reference_map)
    outside = np.ones(reference_map.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    ys, xs = np.nonzero(outside)
    assert np.array_equal(reference_map[ys, xs], np.stack([xs, ys], 1).astype(np.float32))  # identity outside the box
    fast_frame = WarpRenderer(portrait_rgb, portrait_landmarks, fast).render(target)
    exact_frame = WarpRenderer(portrait_rgb, portrait_landmarks, exact).render(target)
    np.testing.assert_array_equal(fast_frame, exact_frame)


def test_the_box_covers_less_than_the_whole_image(flows, portrait_landmarks):
    fast, _ = flows
    _, (x0, y0, x1, y1) = fast.backward_map_box(open_mouth(portrait_landmarks, 10.0))
    assert (x1 - x0) * (y1 - y0) < 0.6 * fast.height * fast.width


@pytest.mark.parametrize("crop", [(10, 12, 30, 25), (0, 0, 64, 48), (50, 40, 90, 70), (70, 60, 90, 80)])
def test_a_map_window_crops_like_the_whole_image_map(crop):
    """Inside, across the edge of and outside the known box: the identity with the known part pasted in."""
    from mofa_engine.warp.raster import Box, MapWindow

    rng = np.random.default_rng(3)
    height, width, (x0, y0, x1, y1) = 80, 96, (8, 6, 64, 48)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    whole = np.stack([xs, ys], -1)
    whole[y0:y1, x0:x1] += rng.normal(size=(y1 - y0, x1 - x0, 2)).astype(np.float32)
    window = MapWindow.fused(whole[y0:y1, x0:x1].copy(), (x0, y0, x1, y1))
    box = Box(*crop)
    map_x, map_y = window.crop(box)
    np.testing.assert_array_equal(map_x, whole[box.slices][..., 0])
    np.testing.assert_array_equal(map_y, whole[box.slices][..., 1])
