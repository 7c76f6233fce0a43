"""Canvas drawings (Fabric.js JSON) -> drags and masks in photo pixels, as the CLI reads them."""

from __future__ import annotations

import json

import numpy as np

from mofa_engine import load_trajectories
from portrait_studio import sketch


def test_strokes_and_lines_become_drags_in_photo_pixels(tmp_path):
    drawing = {"objects": [
        {"type": "path", "strokeWidth": 3,
         "path": [["M", 10, 20], ["Q", 12, 22, 15, 25], ["Q", 18, 28, 30, 40], ["L", 30, 40]]},
        {"type": "line", "left": 100, "top": 50, "width": 40, "height": 20, "x1": -20, "y1": -10, "x2": 20, "y2": 10},
        {"type": "path", "path": [["M", 5, 5]]},  # a click: no drag
        {"type": "rect", "left": 0, "top": 0, "width": 5, "height": 5},
    ]}
    drags = sketch.drawing_trajectories(drawing, scale=0.5, photo_size=(200, 300))
    assert drags == [[[20.0, 40.0], [30.0, 50.0], [60.0, 80.0]], [[200.0, 100.0], [280.0, 140.0]]]
    path = sketch.write_trajectories(drags, tmp_path / "t.json")
    loaded = load_trajectories(path, 200, 300)  # the CLI's reader accepts it
    assert np.allclose(loaded[1], [[200, 100], [280, 140]])
    assert json.loads(path.read_text())["trajectories"] == drags


def test_long_strokes_are_thinned_and_points_stay_in_the_photo():
    path = [["M", 0, 0]] + [["L", float(i), float(i)] for i in range(1, 400)]
    (drag,) = sketch.drawing_trajectories({"objects": [{"type": "path", "path": path}]}, 1.0, (100, 120))
    assert len(drag) == sketch.MAX_POINTS and drag[0] == [0.0, 0.0]
    assert all(0 <= x < 120 and 0 <= y < 100 for x, y in drag)


def test_painted_strokes_become_a_mask(tmp_path):
    drawing = {"objects": [{"type": "path", "strokeWidth": 20, "path": [["M", 20, 50], ["L", 180, 50]]},
                           {"type": "rect", "left": 0, "top": 150, "width": 40, "height": 40}]}
    mask = sketch.drawing_mask(drawing, scale=2.0, photo_size=(100, 100))
    assert mask.shape == (100, 100) and set(np.unique(mask)) == {0, 255}
    assert mask[25, 50] == 255 and mask[25, 2] == 0 and mask[10, 50] == 0  # stroke 10 px wide at y = 25
    assert mask[85, 10] == 255 and mask[85, 30] == 0  # the rectangle
    assert sketch.drawing_mask(None, 1.0, (10, 10)).sum() == 0
    path = sketch.write_mask(mask, tmp_path / "m.png")
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(path)), mask)


def test_fabric_7_objects_centred_origins():
    """What streamlit-drawable-canvas 0.13 (Fabric 7) sends: capitalised types, centred origins."""
    drawing = {"version": "7.4.0", "objects": [
        {"type": "Path", "originX": "center", "originY": "center", "left": 210, "top": 267.7, "strokeWidth": 3,
         "path": [["M", 180.0, 279.7], ["Q", 180, 279.7, 185, 277.7], ["L", 240.0, 255.7]]},
        {"type": "Rect", "originX": "center", "originY": "center", "left": 50, "top": 50, "width": 20, "height": 10},
    ]}
    (drag,) = sketch.drawing_trajectories(drawing, scale=1.0, photo_size=(400, 400))
    assert drag[0] == [180.0, 279.7] and drag[-1] == [240.0, 255.7]
    mask = sketch.drawing_mask(drawing, 1.0, (400, 400))
    assert mask[50, 50] == 255 and mask[50, 41] == 255 and mask[50, 38] == 0 and mask[44, 50] == 0
