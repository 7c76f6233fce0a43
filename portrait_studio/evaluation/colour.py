"""Colour and sharpness measures, implemented from their published definitions.

- `srgb_to_lab`: IEC 61966-2-1 sRGB (D65) -> CIE 1976 L*a*b* with the D65 white.
- `ciede2000`: CIE colour difference ΔE00 (Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula:
  implementation notes, supplementary test data, and mathematical observations", 2005), with
  kL = kC = kH = 1.
- `cpbd`: cumulative probability of blur detection (Narvekar & Karam, "A no-reference image blur metric
  based on the cumulative probability of blur detection (CPBD)", IEEE TIP 2011): the share of edge
  pixels whose width (Marziliano: distance between the intensity extrema either side of the edge, along
  the gradient) is at most the just-noticeable-blur width of their 64x64 block (5 px where the block's
  contrast is <= 50 grey levels, else 3 px). 1 = every edge sharp, 0 = every edge visibly blurred.
"""

from __future__ import annotations

import cv2
import numpy as np

_D65 = np.array([0.95047, 1.0, 1.08883])  # reference white, X Y Z
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
CPBD_BLOCK = 64  # px, the block size of the published metric
CPBD_EDGE_SHARE = 0.002  # a block is an edge block when more than this share of its pixels are edges
CANNY_LOW, CANNY_HIGH = 30, 60  # Canny hysteresis thresholds on the 3x3 Sobel magnitude (low-contrast edges count)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB colours -> CIELAB (D65). rgb: uint8 [..., 3] (0..255) or float [..., 3] in [0, 1].

    Returns float64 [..., 3]: L in [0, 100], a and b roughly in [-128, 128].
    """
    rgb = np.asarray(rgb)
    c = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else np.asarray(rgb, np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16.0) / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between CIELAB colours lab1 and lab2 (float [..., 3], broadcast).

    Returns float64 [...] >= 0; about 1 is a just-noticeable difference.
    """
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    # 1. a' from the mean chroma; C', h' (degrees in [0, 360)).
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0
    g = 0.5 * (1.0 - np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, np.degrees(np.arctan2(b1, a1p)) % 360.0)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, np.degrees(np.arctan2(b2, a2p)) % 360.0)
    # 2. differences ΔL', ΔC', ΔH'.
    dl, dc = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dhh = 2.0 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2.0))
    # 3. weighting functions and the rotation term.
    lm, cm = (l1 + l2) / 2.0, (c1p + c2p) / 2.0
    hsum = h1p + h2p
    hm = np.where(np.abs(h1p - h2p) <= 180.0, hsum / 2.0,
                  np.where(hsum < 360.0, (hsum + 360.0) / 2.0, (hsum - 360.0) / 2.0))
    hm = np.where(c1p * c2p == 0, hsum, hm)
    t = (1.0 - 0.17 * np.cos(np.radians(hm - 30.0)) + 0.24 * np.cos(np.radians(2.0 * hm))
         + 0.32 * np.cos(np.radians(3.0 * hm + 6.0)) - 0.20 * np.cos(np.radians(4.0 * hm - 63.0)))
    d_theta = 30.0 * np.exp(-(((hm - 275.0) / 25.0) ** 2))
    rc = 2.0 * np.sqrt(cm ** 7 / (cm ** 7 + 25.0 ** 7))
    sl = 1.0 + 0.015 * (lm - 50.0) ** 2 / np.sqrt(20.0 + (lm - 50.0) ** 2)
    sc = 1.0 + 0.045 * cm
    sh = 1.0 + 0.015 * cm * t
    rt = -np.sin(np.radians(2.0 * d_theta)) * rc
    return np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh))


def _run_lengths(rising: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a boolean [R, N] array: consecutive True counts ending at each index and starting at it."""
    def ending(x: np.ndarray) -> np.ndarray:
        count = np.cumsum(x, axis=1)
        reset = np.maximum.accumulate(np.where(x, 0, count), axis=1)
        return count - reset

    return ending(rising), ending(rising[:, ::-1])[:, ::-1]


def _edge_widths(gray: np.ndarray, edges: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Marziliano widths along rows for edge pixels (bool [H, W]) with row gradient `grad` [H, W]."""
    h, w = gray.shape
    d = np.diff(gray, axis=1)  # [H, W-1]: d[:, x] = I[x+1] - I[x]
    widths = np.zeros((h, w))
    for sign in (1.0, -1.0):
        mono = (sign * d) > 0
        end_here, start_here = _run_lengths(mono)  # [H, W-1]
        left = np.zeros((h, w))
        right = np.zeros((h, w))
        left[:, 1:] = end_here  # monotone steps to the left of pixel x (ending with d[x-1])
        right[:, :-1] = start_here  # monotone steps to its right (starting with d[x])
        pick = edges & ((sign * grad) > 0)
        widths[pick] = (left + right)[pick]
    return widths


def cpbd(image: np.ndarray) -> float:
    """Cumulative probability of blur detection of one image (see the module docstring).

    image: uint8 [H, W, 3] RGB or [H, W] grey. Returns a float in [0, 1]; NaN when the image has no
    edge block (a flat picture has no sharpness to measure).
    """
    gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    edges = cv2.Canny(gray, CANNY_LOW, CANNY_HIGH) > 0
    g = gray.astype(np.float64)
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
    along_x = np.abs(gx) >= np.abs(gy)
    widths = _edge_widths(g, edges & along_x, gx)
    widths += _edge_widths(g.T, (edges & ~along_x).T, gy.T).T
    h, w = gray.shape
    sharp = total = 0
    for y in range(0, h - CPBD_BLOCK + 1, CPBD_BLOCK):
        for x in range(0, w - CPBD_BLOCK + 1, CPBD_BLOCK):
            block = (slice(y, y + CPBD_BLOCK), slice(x, x + CPBD_BLOCK))
            if edges[block].sum() <= CPBD_EDGE_SHARE * CPBD_BLOCK * CPBD_BLOCK:
                continue
            contrast = int(gray[block].max()) - int(gray[block].min())
            jnb = 5.0 if contrast <= 50 else 3.0
            wb = widths[block][edges[block] & (widths[block] > 0)]
            total += wb.size
            # P_blur = 1 - exp(-(w / w_jnb)^3.6) <= P_jnb = 1 - exp(-1)  <=>  w <= w_jnb
            sharp += int((wb <= jnb).sum())
    return float(sharp / total) if total else float("nan")

