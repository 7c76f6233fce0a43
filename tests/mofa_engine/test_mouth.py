"""MouthInterior on the example portrait, without a flow: the frame to finish is the photo itself."""

from __future__ import annotations

import numpy as np

from mofa_engine.warp.mouth import INNER_LIP, MouthInterior, inner_lip_aperture

from .test_warp_renderer import closed_mouth, luma, open_mouth, polygon_pixels


def test_aperture_of_the_smiling_example(portrait_landmarks):
    assert 3.0 < inner_lip_aperture(portrait_landmarks) < 12.0
    assert inner_lip_aperture(closed_mouth(portrait_landmarks)) < 0.5


def test_photo_analysis(portrait_rgb, portrait_landmarks):
    mouth = MouthInterior(portrait_rgb, portrait_landmarks)
    red, green, blue = mouth.lip_rgb
    assert red > green + 20 and red > blue + 20  # lips are reddish
    assert mouth.source_open
    assert mouth.split == 1.0  # a smile's teeth are upper teeth: all of them ride with the upper lip
    assert luma(mouth.teeth_rgb) > luma(mouth.lip_rgb) + 30
    assert not MouthInterior(portrait_rgb, closed_mouth(portrait_landmarks)).source_open


def test_closed_target_is_left_alone(portrait_rgb, portrait_landmarks):
    mouth = MouthInterior(portrait_rgb, closed_mouth(portrait_landmarks))
    frame = portrait_rgb.copy()
    target = closed_mouth(open_mouth(portrait_landmarks, 6.0))
    target[[65, 66, 67]] += (0.0, 1.0)  # 1 px apart: still closed
    assert not mouth.apply(frame, target)
    assert np.array_equal(frame, portrait_rgb)


def test_photo_interior_at_rest_is_unchanged(portrait_rgb, portrait_landmarks):
    frame = portrait_rgb.copy()
    assert MouthInterior(portrait_rgb, portrait_landmarks).apply(frame, portrait_landmarks)
    assert np.abs(frame.astype(int) - portrait_rgb.astype(int)).max() <= 1


def test_photo_teeth_are_kept_unstretched(portrait_rgb, portrait_landmarks):
    # only the lower lip moves: rows under the (unmoved) upper lip still show the photo's teeth
    mouth = MouthInterior(portrait_rgb, portrait_landmarks)
    frame = portrait_rgb.copy()
    mouth.apply(frame, open_mouth(portrait_landmarks, 10.0))
    x, y = np.round(portrait_landmarks[62]).astype(int)
    kept = frame[y + 1 : y + 5, x - 8 : x + 9].astype(int)
    photo = portrait_rgb[y + 1 : y + 5, x - 8 : x + 9].astype(int)
    assert np.abs(kept - photo).mean() < 6


def test_synthesised_cavity_is_dark_and_red_and_teeth_grow_with_aperture(portrait_rgb, portrait_landmarks):
    mouth = MouthInterior(portrait_rgb, closed_mouth(portrait_landmarks))
    lips = luma(mouth.lip_rgb)
    bright, dark = [], []
    for amount in (4.0, 8.0, 14.0):
        frame = portrait_rgb.copy()
        target = open_mouth(portrait_landmarks, amount)
        assert mouth.apply(frame, target)
        inside = polygon_pixels(frame, target[list(INNER_LIP)], shrink=1.0)
        values = luma(inside)
        bright.append(int((values > 0.9 * lips).sum()))
        dark.append(inside[values < 0.4 * lips])
    assert bright[0] < bright[1] < bright[2]  # the teeth band grows with the opening
    cavity = np.concatenate(dark)
    assert len(cavity) > 100
    red, green, blue = cavity.mean(axis=0)
    assert red > green and red > blue  # dark reddish-brown, not grey


def test_interior_fades_in_just_above_closed(portrait_rgb, portrait_landmarks):
    mouth = MouthInterior(portrait_rgb, closed_mouth(portrait_landmarks))
    target = closed_mouth(portrait_landmarks)
    changes = []
    for gap in (1.8, 2.2, 3.0):
        frame = portrait_rgb.copy()
        opened = target.copy()
        opened[[65, 66, 67]] += (0.0, gap)
        mouth.apply(frame, opened)
        changes.append(np.abs(frame.astype(int) - portrait_rgb.astype(int)).sum())
    assert 0 < changes[0] < changes[1] < changes[2]
