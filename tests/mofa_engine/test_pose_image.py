"""Pose images (spec section 2.2): hand-checkable skeleton segments, colours, draw order, resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mofa_engine.pipeline.pose_image import POSE_PARTS, draw_pose_images

FACE = np.array([10, 200, 10]) / 255.0
LEFT_EYEBROW = np.array([180, 220, 10]) / 255.0


def _parked(frames: int, width: int, height: int) -> np.ndarray:
    """All 68 points parked in the bottom-right corner (they draw only a dot there)."""
    return np.tile(np.array([width - 2.0, height - 2.0]), (frames, 68, 1))


def _face_segment(points: np.ndarray, y: float, x0: float, x1: float) -> None:
    """Put the 17 FACE points on a horizontal line from x0 to x1 at row y."""
    points[:, 0:17, 0] = np.linspace(x0, x1, 17)
    points[:, 0:17, 1] = y


def _colour(images: torch.Tensor, frame: int, row: int, col: int) -> np.ndarray:
    return images[frame, :, row, col].double().numpy()


def test_face_segment_at_canvas_size_is_drawn_with_face_colour():
    points = _parked(1, 320, 320)
    _face_segment(points, y=100.7, x0=100.0, x1=200.0)  # int(100.7) = 100
    images = draw_pose_images(points, 320, 320)
    assert images.shape == (1, 3, 320, 320) and images.dtype == torch.float32
    for row in (99, 100, 101):  # thickness 2 covers the row above and below
        np.testing.assert_allclose(_colour(images, 0, row, 150), FACE, atol=1e-7)
    for row in (97, 103):
        np.testing.assert_allclose(_colour(images, 0, row, 150), 0.0)
    np.testing.assert_allclose(_colour(images, 0, 100, 250), 0.0)  # beyond the segment end
    assert float(images.max()) <= 1.0 and float(images.min()) >= 0.0


def test_segment_rows_after_bilinear_upscale():
    """At 640x640 the canvas is scaled by 2: rows 99..101 of the canvas -> full colour at 199..202."""
    points = _parked(1, 640, 640)
    _face_segment(points, y=200.0, x0=200.0, x1=400.0)  # canvas row 100, columns 100..200
    images = draw_pose_images(points, 640, 640)
    for row in (199, 200, 201, 202):
        np.testing.assert_allclose(_colour(images, 0, row, 300), FACE, atol=1e-6)
    for row in (198, 203):  # source 98.75 / 101.25: 3/4 of the colour (half-pixel-centre bilinear)
        np.testing.assert_allclose(_colour(images, 0, row, 300), 0.75 * FACE, atol=1e-6)
    for row in (196, 205):
        np.testing.assert_allclose(_colour(images, 0, row, 300), 0.0, atol=1e-7)


def test_axes_are_scaled_separately():
    """x -> x / W * 320 and y -> y / H * 320, then resized back to (W, H)."""
    points = _parked(1, 320, 640)
    _face_segment(points, y=400.0, x0=64.0, x1=256.0)  # canvas row 200, columns 64..256
    images = draw_pose_images(points, height=640, width=320)
    assert images.shape == (1, 3, 640, 320)
    np.testing.assert_allclose(_colour(images, 0, 400, 160), FACE, atol=1e-6)
    np.testing.assert_allclose(_colour(images, 0, 300, 160), 0.0)


def test_later_parts_overwrite_earlier_ones():
    points = _parked(1, 320, 320)
    _face_segment(points, y=100.0, x0=100.0, x1=200.0)
    points[:, 22:27, 0] = 150.0  # LEFT_EYEBROW (23..27): a vertical segment crossing the FACE line
    points[:, 22:27, 1] = np.linspace(50.0, 150.0, 5)
    images = draw_pose_images(points, 320, 320)
    np.testing.assert_allclose(_colour(images, 0, 100, 150), LEFT_EYEBROW, atol=1e-7)  # drawn later
    np.testing.assert_allclose(_colour(images, 0, 100, 120), FACE, atol=1e-7)
    np.testing.assert_allclose(_colour(images, 0, 60, 150), LEFT_EYEBROW, atol=1e-7)


def test_one_image_per_frame():
    points = _parked(3, 320, 320)
    _face_segment(points[1:2], y=100.0, x0=100.0, x1=200.0)
    images = draw_pose_images(points, 320, 320)
    assert images.shape == (3, 3, 320, 320)
    np.testing.assert_allclose(_colour(images, 1, 100, 150), FACE, atol=1e-7)
    np.testing.assert_allclose(_colour(images, 0, 100, 150), 0.0)


def test_part_table_is_the_reference_one():
    assert [name for name, _, _ in POSE_PARTS][:3] == ["FACE", "LEFT_EYE", "LEFT_EYEBROW"]
    assert len(POSE_PARTS) == 15
    assert sorted({i for _, idx, _ in POSE_PARTS for i in idx}) == list(range(1, 69))


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[T, 68, 2\]"):
        draw_pose_images(np.zeros((68, 2)), 320, 320)
