"""CIEDE2000 against Sharma, Wu & Dalal's published test pairs; sRGB->Lab and CPBD on hand-checked images."""

import cv2
import numpy as np
import pytest

from portrait_studio.evaluation.colour import ciede2000, cpbd, srgb_to_lab

# (L1, a1, b1, L2, a2, b2, ΔE00): the 34 pairs of Sharma et al. (2005), Table 1.
SHARMA_PAIRS = [
    (50.0, 2.6772, -79.7751, 50.0, 0.0, -82.7485, 2.0425),
    (50.0, 3.1571, -77.2803, 50.0, 0.0, -82.7485, 2.8615),
    (50.0, 2.8361, -74.0200, 50.0, 0.0, -82.7485, 3.4412),
    (50.0, -1.3802, -84.2814, 50.0, 0.0, -82.7485, 1.0000),
    (50.0, -1.1848, -84.8006, 50.0, 0.0, -82.7485, 1.0000),
    (50.0, -0.9009, -85.5211, 50.0, 0.0, -82.7485, 1.0000),
    (50.0, 0.0, 0.0, 50.0, -1.0, 2.0, 2.3669),
    (50.0, -1.0, 2.0, 50.0, 0.0, 0.0, 2.3669),
    (50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0009, 7.1792),
    (50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0010, 7.1792),
    (50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0011, 7.2195),
    (50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0012, 7.2195),
    (50.0, -0.0010, 2.4900, 50.0, 0.0009, -2.4900, 4.8045),
    (50.0, -0.0010, 2.4900, 50.0, 0.0010, -2.4900, 4.8045),
    (50.0, -0.0010, 2.4900, 50.0, 0.0011, -2.4900, 4.7461),
    (50.0, 2.5, 0.0, 50.0, 0.0, -2.5, 4.3065),
    (50.0, 2.5, 0.0, 73.0, 25.0, -18.0, 27.1492),
    (50.0, 2.5, 0.0, 61.0, -5.0, 29.0, 22.8977),
    (50.0, 2.5, 0.0, 56.0, -27.0, -3.0, 31.9030),
    (50.0, 2.5, 0.0, 58.0, 24.0, 15.0, 19.4535),
    (50.0, 2.5, 0.0, 50.0, 3.1736, 0.5854, 1.0000),
    (50.0, 2.5, 0.0, 50.0, 3.2972, 0.0, 1.0000),
    (50.0, 2.5, 0.0, 50.0, 1.8634, 0.5757, 1.0000),
    (50.0, 2.5, 0.0, 50.0, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_ciede2000_matches_sharma_pairs():
    pairs = np.array(SHARMA_PAIRS)
    got = ciede2000(pairs[:, 0:3], pairs[:, 3:6])
    np.testing.assert_allclose(got, pairs[:, 6], atol=1e-4)
    np.testing.assert_allclose(ciede2000(pairs[:, 3:6], pairs[:, 0:3]), got, atol=1e-9)  # symmetric
    assert ciede2000([50.0, 10.0, -5.0], [50.0, 10.0, -5.0]) == 0.0


def test_srgb_to_lab_known_colours():
    lab = srgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [128, 128, 128]], np.uint8))
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.02)
    np.testing.assert_allclose(lab[3], [87.73, -86.18, 83.18], atol=0.02)
    np.testing.assert_allclose(lab[4], [53.59, 0.0, 0.0], atol=0.02)


def _ramp_image(ramp: int, low: int, high: int, size: int = 128) -> np.ndarray:
    """Vertical stripes 32 px wide: from `low` to `high` over `ramp` px, then back down over `ramp` px."""
    row = np.full(size, low, np.float64)
    period = 64
    for start in range(16, size, period):
        up = np.linspace(low, high, ramp + 1)
        row[start:start + ramp + 1] = up[: max(0, min(ramp + 1, size - start))]
        row[start + ramp + 1:start + 32] = high
        down = up[::-1]
        s2 = start + 32
        row[s2:s2 + ramp + 1] = down[: max(0, min(ramp + 1, size - s2))]
    return np.tile(np.clip(row, 0, 255).astype(np.uint8), (size, 1))


@pytest.mark.parametrize(("ramp", "low", "high", "expected"), [
    (1, 40, 220, 1.0),   # a one-pixel step: width 1 <= 3 (high contrast)
    (3, 40, 220, 1.0),   # width 3: exactly the just-noticeable width of a high-contrast block
    (6, 40, 220, 0.0),   # width 6 > 3: every edge visibly blurred
    (4, 100, 148, 1.0),  # low contrast (<= 50 levels): the JNB width is 5, so a width of 4 is sharp
    (6, 100, 148, 0.0),  # ... and 6 is not
])
def test_cpbd_hand_checked_ramps(ramp, low, high, expected):
    assert cpbd(_ramp_image(ramp, low, high)) == pytest.approx(expected)


def test_cpbd_falls_with_blur_and_ignores_flat_images(portrait_path):
    image = cv2.cvtColor(cv2.imread(str(portrait_path)), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    sharp = cpbd(image)
    blurred = [cpbd(cv2.GaussianBlur(image, (0, 0), s)) for s in (0.8, 1.5, 3.0)]
    assert sharp > blurred[0] > blurred[1] > blurred[2]
    assert np.isnan(cpbd(np.full((128, 128, 3), 77, np.uint8)))

