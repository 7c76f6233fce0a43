"""Head region (face, hair, neck) from 68 landmarks."""

import cv2
import numpy as np
import pytest

from mofa_engine.regions import face_frame, face_region_mask
from tests.mofa_engine.test_analytic_flow import SIZE, synthetic_face

REFERENCE = synthetic_face()


def _at(mask: np.ndarray, point) -> float:
    return float(mask[int(round(point[1])), int(round(point[0]))])


def test_face_frame():
    frame = face_frame(REFERENCE)
    np.testing.assert_allclose(frame.across, [1, 0], atol=1e-6)
    np.testing.assert_allclose(frame.down, [0, 1], atol=1e-6)
    assert frame.height == pytest.approx(REFERENCE[8, 1] - REFERENCE[17:27, 1].mean(), rel=1e-5)
    assert frame.width == pytest.approx(REFERENCE[16, 0] - REFERENCE[0, 0], rel=1e-5)
    with pytest.raises(ValueError, match="degenerate"):
        face_frame(np.zeros((68, 2)))
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        face_frame(np.zeros((5, 2)))


def test_mask_covers_face_hair_and_neck():
    mask = face_region_mask(REFERENCE, SIZE, SIZE)
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    frame = face_frame(REFERENCE)
    assert all(_at(mask, p) > 0.9 for p in REFERENCE[17:])  # every inner landmark
    brow, chin, h = frame.brow_center, frame.chin, frame.height
    assert _at(mask, brow - [0, 0.6 * h]) > 0.9  # hair, 0.6 face heights above the brows
    assert _at(mask, brow - [0, 0.9 * h]) < 0.1  # not much further
    assert _at(mask, chin + [0, 0.3 * h]) > 0.9  # neck
    assert _at(mask, [2, 2]) == 0 and _at(mask, [SIZE - 3, 2]) == 0  # background corners
    assert _at(mask, [REFERENCE[0, 0] - 0.3 * frame.width, chin[1]]) < 0.1  # beside the chin


def test_parts_can_be_left_out_and_thresholded():
    frame = face_frame(REFERENCE)
    no_hair = face_region_mask(REFERENCE, SIZE, SIZE, include_hair=False, feather=0)
    assert _at(no_hair, frame.brow_center - [0, 0.3 * frame.height]) == 0
    no_neck = face_region_mask(REFERENCE, SIZE, SIZE, include_neck=False, feather=0)
    assert _at(no_neck, frame.chin + [0, 0.3 * frame.height]) == 0
    binary = face_region_mask(REFERENCE, SIZE, SIZE, threshold=0.5)
    assert set(np.unique(binary)) == {0.0, 1.0}
    def blurred(mask):
        return ((mask > 0.05) & (mask < 0.95)).sum()

    assert blurred(face_region_mask(REFERENCE, SIZE, SIZE, feather=8)) > blurred(
        face_region_mask(REFERENCE, SIZE, SIZE, feather=2))
    with pytest.raises(ValueError, match="feather"):
        face_region_mask(REFERENCE, SIZE, SIZE, feather=-1)


def test_rolled_head_rolls_the_region():
    big = 2 * SIZE  # room for the whole rotated region
    reference = REFERENCE + SIZE / 2
    centre, angle = reference.mean(0), 30.0
    rotation = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)  # [2, 3]
    rolled = reference @ rotation[:, :2].T + rotation[:, 2]
    assert face_frame(rolled).across[1] < -0.4  # the eye line tilts
    mask = face_region_mask(rolled, big, big, feather=0)
    upright = face_region_mask(reference, big, big, feather=0)
    expected = cv2.warpAffine(upright, rotation, (big, big), flags=cv2.INTER_NEAREST)

    def iou(a, b):
        return np.logical_and(a > 0, b > 0).sum() / np.logical_or(a > 0, b > 0).sum()

    assert iou(mask, expected) > 0.98
    assert iou(mask, upright) < 0.9
