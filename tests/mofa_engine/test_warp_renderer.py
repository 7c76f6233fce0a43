"""WarpRenderer on the example portrait with the real AnalyticFlow: identity, mouth, blinks, streaming."""

from __future__ import annotations

import numpy as np
import pytest

from mofa_engine.warp.eyelids import eye_aperture
from mofa_engine.warp.mouth import INNER_LIP, inner_lip_aperture
from mofa_engine.warp.raster import box_around, polygon_alpha
from mofa_engine.warp.warp_renderer import WarpRenderer, WarpRenderOptions

RIGHT_EYE = [36, 37, 38, 39, 40, 41]
LEFT_EYE = [42, 43, 44, 45, 46, 47]


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def polygon_pixels(image: np.ndarray, polygon: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """Pixels [N, 3] float of `image` well inside `polygon` (coverage > 0.99 after shrinking it)."""
    centre = polygon.mean(axis=0)
    offset = polygon - centre
    norm = np.maximum(np.linalg.norm(offset, axis=1, keepdims=True), 1e-6)
    inner = (polygon - offset / norm * shrink).astype(np.float32)
    box = box_around(inner, 1.0, *image.shape[:2])
    return image[box.slices][polygon_alpha(inner, box) > 0.99].astype(np.float32)


def open_mouth(points: np.ndarray, amount: float) -> np.ndarray:
    """Drop the inner lower lip by `amount` px, the outer lower lip and the chin with it."""
    out = points.copy()
    out[[65, 66, 67]] += (0.0, amount)
    out[55:60] += (0.0, 0.9 * amount)
    out[5:12] += (0.0, 0.6 * amount)
    out[7:10] += (0.0, 0.3 * amount)
    return out


def closed_mouth(points: np.ndarray) -> np.ndarray:
    """The inner lower lip laid onto the inner upper lip."""
    out = points.copy()
    out[[65, 66, 67]] = out[[63, 62, 61]]
    return out


def blink(points: np.ndarray, closure: float = 1.0) -> np.ndarray:
    """Upper lids moved `closure` of the way onto the lower lids."""
    out = points.copy()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        out[upper] = out[upper] + closure * (out[lower] - out[upper])
    return out


@pytest.fixture(scope="module")
def renderer(portrait_rgb, portrait_landmarks, analytic_flow) -> WarpRenderer:
    return WarpRenderer(portrait_rgb, portrait_landmarks, analytic_flow)


def test_identity_points_give_the_portrait(renderer, portrait_rgb, portrait_landmarks):
    frame = renderer.render(portrait_landmarks)
    assert frame.dtype == np.uint8 and frame.shape == portrait_rgb.shape
    assert np.abs(frame.astype(int) - portrait_rgb.astype(int)).max() <= 1


def test_open_mouth_keeps_the_photos_teeth_and_adds_a_dark_cavity(renderer, portrait_rgb, portrait_landmarks):
    # the example smiles with its upper teeth showing: they stay under the upper lip, the gap is dark
    assert inner_lip_aperture(portrait_landmarks) > 3.0
    target = open_mouth(portrait_landmarks, 12.0)
    frame = renderer.render(target)
    polygon = target[list(INNER_LIP)]
    inside = polygon_pixels(frame, polygon, shrink=1.5)
    skin = luma(portrait_rgb[160:175, 205:240].astype(np.float32)).mean()  # chin skin
    assert luma(inside).mean() < 0.6 * skin
    # the photo's interior (teeth) is kept, unstretched, right under the upper inner lip
    upper_band = frame[int(target[62, 1]) + 1 : int(target[62, 1]) + 4, int(target[62, 0]) - 4 : int(target[62, 0]) + 5]
    lower_gap = frame[int(target[66, 1]) - 5 : int(target[66, 1]) - 2, int(target[66, 0]) - 4 : int(target[66, 0]) + 5]
    assert luma(upper_band.astype(np.float32)).mean() > 170
    assert luma(lower_gap.astype(np.float32)).mean() < 90


def test_open_mouth_on_a_closed_photo_synthesises_cavity_and_teeth(portrait_rgb, portrait_landmarks, analytic_flow):
    # tell the renderer the photo's mouth is closed: the whole interior is synthesised
    renderer = WarpRenderer(portrait_rgb, closed_mouth(portrait_landmarks), analytic_flow)
    target = open_mouth(portrait_landmarks, 12.0)
    frame = renderer.render(target)
    plain = renderer.warp(target)
    polygon = target[list(INNER_LIP)]
    lips = luma(polygon_pixels(portrait_rgb, portrait_landmarks[48:60], shrink=1.0)).mean()
    inside = luma(polygon_pixels(frame, polygon, shrink=1.5))
    assert inside.mean() < 0.75 * lips  # teeth included
    assert (inside < 0.5 * lips).mean() > 0.5  # most of the opening is a dark cavity
    # below the teeth band (the lower half of the opening) it is dark
    lower_half = polygon.copy()
    lower_half[1:4] = (polygon[1:4] + polygon[[7, 6, 5]]) / 2.0  # upper lip -> midline
    assert np.median(luma(polygon_pixels(frame, lower_half, shrink=1.0))) < 0.4 * lips
    # an off-white teeth band just under the upper inner lip, darker cavity below it
    x = int(round(target[62, 0]))
    top = int(np.ceil(target[62, 1])) + 1
    bottom = int(np.floor(target[66, 1])) - 1
    column = luma(frame[top:bottom, x - 3 : x + 4].astype(np.float32)).mean(axis=1)
    assert column[:3].mean() > 150, column
    assert column[len(column) // 2 :].min() < 60, column
    # outside a margin around the face the frame equals the plain warp (and the portrait)
    lo, hi = portrait_landmarks.min(axis=0), portrait_landmarks.max(axis=0)
    margin = 1.2 * float((hi - lo).max())
    outside = np.ones(frame.shape[:2], bool)
    outside[
        max(int(lo[1] - margin), 0) : int(hi[1] + margin), max(int(lo[0] - margin), 0) : int(hi[0] + margin)
    ] = False
    assert outside.sum() > 10_000
    assert np.array_equal(frame[outside], plain[outside])
    assert np.abs(frame[outside].astype(int) - portrait_rgb[outside].astype(int)).max() <= 1


def test_closed_target_equals_the_plain_warp(renderer, portrait_landmarks):
    target = closed_mouth(portrait_landmarks)
    assert inner_lip_aperture(target) < 1.0
    assert np.array_equal(renderer.render(target), renderer.warp(target))


def test_blink_covers_the_eye_with_skin(renderer, portrait_rgb, portrait_landmarks):
    target = blink(portrait_landmarks)
    assert eye_aperture(target, 0) < 0.5 and eye_aperture(target, 1) < 0.5
    frame = renderer.render(target)
    plain = renderer.warp(target)
    for eye in (RIGHT_EYE, LEFT_EYE):
        photo_eye = portrait_landmarks[eye]
        was = luma(polygon_pixels(portrait_rgb, photo_eye))
        assert (was < 70).mean() > 0.15  # the photo's eye shows a dark iris there
        assert (luma(polygon_pixels(plain, photo_eye)) < 70).any()  # and the plain warp still does
        now = polygon_pixels(frame, photo_eye)
        assert not (luma(now) < 70).any()
        # coloured like the skin around the eye (just above the upper lid and below the lower lid)
        upper = np.round(portrait_landmarks[[eye[1], eye[2]]].mean(axis=0)).astype(int)
        lower = np.round(portrait_landmarks[[eye[4], eye[5]]].mean(axis=0)).astype(int)
        around = np.concatenate(
            [
                portrait_rgb[upper[1] - 5 : upper[1] - 2, upper[0] - 3 : upper[0] + 4].reshape(-1, 3),
                portrait_rgb[lower[1] + 2 : lower[1] + 5, lower[0] - 3 : lower[0] + 4].reshape(-1, 3),
            ]
        ).astype(np.float32)
        skin = around.mean(axis=0)
        # closed lids: skin-toned (R > G > B like the skin) and at most socket-shadow darker, with a lash
        # line where the lids meet; an open eye (white sclera, dark iris) fails both
        median = np.median(now, axis=0)
        assert median[0] > median[1] > median[2], (median, skin)
        assert luma(median[None]) > 0.6 * luma(skin[None]), (median, skin)


def test_slight_lid_motion_is_left_to_the_warp(renderer, portrait_landmarks):
    target = blink(portrait_landmarks, 0.04)
    assert np.array_equal(renderer.render(target), renderer.warp(target))


def test_options_turn_the_finishing_off(portrait_rgb, portrait_landmarks, analytic_flow):
    options = WarpRenderOptions(mouth_interior=False, eyelids=False)
    renderer = WarpRenderer(portrait_rgb, portrait_landmarks, analytic_flow, options)
    target = blink(open_mouth(portrait_landmarks, 10.0))
    assert np.array_equal(renderer.render(target), renderer.warp(target))


def test_render_frames_streams_lazily(renderer, portrait_landmarks):
    pulled = []

    def track():
        for amount in range(1000):
            pulled.append(amount)
            yield open_mouth(portrait_landmarks, amount * 0.5)

    frames = renderer.render_frames(track())
    assert pulled == []  # nothing happens before the first frame is asked for
    first = next(frames)
    assert pulled == [0]
    second = next(frames)
    assert pulled == [0, 1]
    assert first.dtype == np.uint8 and first.shape == (*renderer.image.shape[:2], 3)
    assert np.array_equal(second, renderer.render(open_mouth(portrait_landmarks, 0.5)))
    frames.close()


def test_render_frames_passes_frame_indices_when_asked(portrait_rgb, portrait_landmarks):
    seen = []

    class RecordingFlow:
        def backward_map(self, points, frame_index=None):
            seen.append(frame_index)
            ys, xs = np.mgrid[0:512, 0:512].astype(np.float32)
            return xs, ys

    renderer = WarpRenderer(portrait_rgb, portrait_landmarks, RecordingFlow())
    list(renderer.render_frames(np.stack([portrait_landmarks] * 3)))
    list(renderer.render_frames(np.stack([portrait_landmarks] * 3), with_index=True))
    assert seen == [None, None, None, 0, 1, 2]


def test_bad_inputs_raise(portrait_rgb, portrait_landmarks, analytic_flow):
    with pytest.raises(ValueError, match="uint8"):
        WarpRenderer(portrait_rgb.astype(np.float32), portrait_landmarks, analytic_flow)
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        WarpRenderer(portrait_rgb, portrait_landmarks[:60], analytic_flow)
    with pytest.raises(TypeError, match="backward_map"):
        WarpRenderer(portrait_rgb, portrait_landmarks, object())
    renderer = WarpRenderer(portrait_rgb, portrait_landmarks, analytic_flow)
    with pytest.raises(ValueError, match=r"\(67, 2\)"):
        renderer.render(portrait_landmarks[:67])
