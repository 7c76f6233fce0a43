"""Camera moves through the app: the optical flow measured on a rendered video matches the requested
pattern (warp engine), and the CLI takes `--camera NAME[:AMOUNT]`."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from mofa_engine.camera import CameraMove
from mofa_engine.regions import face_region_mask
from portrait_studio.cli import main
from portrait_studio.options import RenderOptions
from portrait_studio.studio import Studio

SIZE = 256


def _frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def still_keys(tmp_path_factory):
    """Keyframes that hold the face still for 1 s (so only the camera moves the background)."""
    path = tmp_path_factory.mktemp("keys") / "still.json"
    path.write_text(json.dumps({"keyframes": [{"t": 0.0}, {"t": 1.0, "jawOpen": 0.0}]}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["zoom-in:0.1", "pan-left:0.06", "rotate-cw:4", "zoom-out:0.1"])
def test_measured_flow_of_the_render_matches_the_camera_move(tmp_path, portrait_path, still_keys, spec):
    with Studio(RenderOptions(engine="warp", size=SIZE, expression=still_keys, camera=spec, head_motion=0.0)) as studio:
        out = studio.render(portrait_path, None, tmp_path / "cam.mp4")
        portrait = studio.prepare(portrait_path)
    frames = _frames(out.path)
    first, last = frames[0], frames[-1]
    height, width = first.shape
    measured = cv2.calcOpticalFlowFarneback(first, last, None, 0.5, 5, 31, 5, 7, 1.5, 0).transpose(2, 0, 1)
    move = CameraMove.parse(spec)
    expected = move.flow(1.0, height, width)
    # background: away from the head (grown by 10 px) and from the frame's edge (what enters from outside)
    head = face_region_mask(portrait.face.landmarks68, height, width, threshold=0.5) > 0
    head = cv2.dilate(head.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    border = np.zeros_like(head)
    border[32:-32, 32:-32] = True
    background = border & ~head
    assert background.sum() > 0.15 * height * width
    err = np.linalg.norm(measured - expected, axis=0)[background]
    still = np.linalg.norm(expected, axis=0)[background]
    assert np.median(still) > 3.0  # the move is large enough to tell apart from no move
    assert np.median(err) < 0.25 * np.median(still), (np.median(err), np.median(still))
    # the opposite move would be far off
    opposite = np.linalg.norm(measured + expected, axis=0)[background]
    assert np.median(opposite) > 1.5 * np.median(still)


def test_cli_camera_flag_and_bad_values(tmp_path, capsys, portrait_path, still_keys):
    out = tmp_path / "bad.mp4"
    code = main(["render", "--image", str(portrait_path), "--expression", str(still_keys), "--engine", "warp",
                 "--camera", "dolly-zoom", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --camera: camera move must be one of")
    assert not out.exists()
    code = main(["render", "--image", str(portrait_path), "--expression", str(still_keys), "--engine", "warp",
                 "--camera", "pan-up:3", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "(0, 0.5]" in err[0] and not out.exists()
