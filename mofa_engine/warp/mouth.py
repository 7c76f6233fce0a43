"""The mouth interior for the warp engine: what shows between the lips when the target parts them.

A dense warp can only move the portrait's own pixels, so a mouth that opens wider than in the photo
gets lip pixels stretched across the gap. `MouthInterior` repaints the region inside the target's
inner-lip contour (iBUG 60-67) instead:

- the photo's own interior (when its mouth is open, e.g. teeth in a smile) is kept, unstretched:
  the part above the photo's darkest row rides with the upper lip (upper teeth are fixed to the
  skull), the part below it with the lower lip (lower teeth ride with the jaw);
- whatever gap is left between them is a synthesised cavity: dark reddish-brown taken from the lips'
  own colour, darkest at the back, with an upper teeth band under the upper lip and a smaller lower
  one above the lower lip when the photo does not already show them.

A closed target (inner-lip aperture below `closed_px`) is left exactly as the warp made it; the
interior fades in over the next pixel of aperture.

Everything per frame happens inside the inner-lip bounding box, in mouth-aligned coordinates
(s along the corner-to-corner axis in [-1, 1], t across it in pixels, positive toward the chin).
"""

from __future__ import annotations

import cv2
import numpy as np

from .raster import Box, box_around, polygon_alpha, smoothstep

INNER_UPPER = (60, 61, 62, 63, 64)  # inner upper lip, left corner to right corner (image order)
INNER_LOWER = (60, 67, 66, 65, 64)  # inner lower lip, same direction
INNER_LIP = tuple(range(60, 68))    # inner contour polygon
OUTER_LIP = tuple(range(48, 60))    # outer contour polygon
_APERTURE_PAIRS = ((61, 67), (62, 66), (63, 65))

_TEETH_RGB = np.array([232.0, 226.0, 210.0], np.float32)  # off-white when the photo shows none
_CAVITY_TINT = np.array([1.1, 0.78, 0.78], np.float32)   # the cavity is the lips' colour, darker and redder
_TONGUE_TINT = np.array([0.75, 0.42, 0.42], np.float32)
_LIP_MARGIN = 1.0  # px past the inner-lip landmarks where the photo's lips are surely lips


def inner_lip_aperture(points: np.ndarray) -> float:
    """Mean gap between the inner upper lip (61-63) and inner lower lip (67-65), in pixels.

    points: float32 [68, 2] iBUG landmarks, pixels (x, y).
    """
    gaps = [np.linalg.norm(points[b] - points[a]) for a, b in _APERTURE_PAIRS]
    return float(np.mean(gaps))


class _MouthAxes:
    """Mouth-aligned coordinates of one set of landmarks: s along 60->64 in [-1, 1], t across it."""

    def __init__(self, points: np.ndarray) -> None:
        left, right = points[60].astype(np.float64), points[64].astype(np.float64)
        span = right - left
        length = float(np.linalg.norm(span))
        self.axis = span / length if length > 1e-3 else np.array([1.0, 0.0])
        self.normal = np.array([-self.axis[1], self.axis[0]])  # points toward the chin
        self.origin = (left + right) / 2.0
        self.half_width = max(length / 2.0, 1e-3)
        self.upper = self._profile(points, INNER_UPPER)
        self.lower = self._profile(points, INNER_LOWER)

    def local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image (x, y) -> (s, t), elementwise."""
        dx, dy = x - self.origin[0], y - self.origin[1]
        s = (dx * self.axis[0] + dy * self.axis[1]) / self.half_width
        t = dx * self.normal[0] + dy * self.normal[1]
        return s.astype(np.float32), t.astype(np.float32)

    def image(self, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s, t) -> image (x, y), elementwise, float32."""
        along = s * self.half_width
        x = self.origin[0] + along * self.axis[0] + t * self.normal[0]
        y = self.origin[1] + along * self.axis[1] + t * self.normal[1]
        return x.astype(np.float32), y.astype(np.float32)

    def lips_at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """t of the inner upper and inner lower lip at each s (piecewise linear)."""
        return np.interp(s, *self.upper).astype(np.float32), np.interp(s, *self.lower).astype(np.float32)

    def _profile(self, points: np.ndarray, indices: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        s, t = self.local(points[list(indices), 0].astype(np.float64), points[list(indices), 1].astype(np.float64))
        return np.maximum.accumulate(s), t  # np.interp needs increasing s


class MouthInterior:
    """Repaints the inside of the target inner-lip contour on warped frames of one portrait.

    image: uint8 [H, W, 3] RGB, the portrait.
    reference: float32 [68, 2], the portrait's own iBUG landmarks in pixels (x, y).
    closed_px: inner-lip aperture (pixels) below which a mouth counts as closed; a closed target is
        left exactly as the plain warp made it, and a closed photo has no interior of its own.
    """

    def __init__(self, image: np.ndarray, reference: np.ndarray, closed_px: float = 1.5) -> None:
        self._image = image
        self._closed_px = float(closed_px)
        self._source = _MouthAxes(reference)
        self.source_aperture = inner_lip_aperture(reference)
        self.source_open = self.source_aperture >= self._closed_px
        self.lip_rgb = _lip_colour(image, reference)
        self.split, self.teeth_rgb = self._analyse_source_interior()

    # -- per frame -------------------------------------------------------------------------------

    def apply(self, frame: np.ndarray, points: np.ndarray) -> bool:
        """Paint the mouth interior of `points` into `frame` in place; return whether anything changed.

        frame: uint8 [H, W, 3] RGB, the plain warp of the portrait to `points`.
        points: float32 [68, 2], the target landmarks in pixels (x, y).
        """
        aperture = inner_lip_aperture(points)
        strength = float(np.clip(aperture - self._closed_px, 0.0, 1.0))
        if strength <= 0.0:
            return False
        height, width = frame.shape[:2]
        # 2 px beyond the inner contour: the warp may smear the photo's teeth just past the lips;
        # out there the interior samples the photo's own lips
        polygon = _grow(points[list(INNER_LIP)].astype(np.float32), _LIP_MARGIN + 1.0)
        box = box_around(polygon, 1.0, height, width)
        if box.empty:
            return False
        alpha = polygon_alpha(polygon, box) * strength
        if not alpha.any():
            return False
        interior = self._interior(points, box)
        region = frame[box.slices]
        blended = region.astype(np.float32) + alpha[..., None] * (interior - region)
        region[...] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return True

    def _interior(self, points: np.ndarray, box: Box) -> np.ndarray:
        """What the mouth interior of `points` looks like over `box`: float32 [h, w, 3] RGB 0-255."""
        target, source = _MouthAxes(points), self._source
        s, t = target.local(*box.grid())
        upper_t, lower_t = target.lips_at(s)
        height = np.maximum(lower_t - upper_t, 0.0)           # target gap at each pixel's s
        from_upper, from_lower = t - upper_t, lower_t - t      # distances to the two inner lips
        scale = target.half_width / source.half_width          # target px per source px

        # 1. The photo's own interior, kept unstretched: rows above the split ride with the upper
        #    lip, rows below it with the lower lip; `kept` is how much of it fits at each s.
        src_upper_t, src_lower_t = source.lips_at(s)
        if self.source_open:
            kept = np.minimum(np.maximum(src_lower_t - src_upper_t, 0.0) * scale, height)
        else:
            kept = np.zeros_like(height)
        kept_upper, kept_lower = self.split * kept, (1.0 - self.split) * kept
        gap = height - kept                                    # what must be synthesised
        use_upper = from_upper - kept_upper <= gap * 0.5
        # never sample deeper into the photo's interior than the part that is kept; where nothing
        # is kept on a side and a gap opens, sample its lip from 1 px further out (the photo's teeth
        # can reach a pixel past its inner-lip landmarks)
        margin = -_LIP_MARGIN * np.minimum(gap, 1.0)
        margin_up = np.where(kept_upper > 0.5, 0.0, margin)
        margin_low = np.where(kept_lower > 0.5, 0.0, margin)
        src_t = np.where(
            use_upper,
            src_upper_t + np.minimum(from_upper + margin_up, kept_upper) / scale,
            src_lower_t - np.minimum(from_lower + margin_low, kept_lower) / scale,
        )
        map_x, map_y = source.image(s, src_t)
        photo = cv2.remap(self._image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        # 2. The synthesised cavity (with teeth) in the gap; fades in from the kept rows.
        into_gap_upper, into_gap_lower = from_upper - kept_upper, from_lower - kept_lower
        # lower teeth only show where the lower lip runs flat, between its inner points 67 and 65
        lower_reach = float(np.clip(np.abs(target.lower[0][[1, 3]]).max() + 0.1, 0.3, 0.7))
        cavity = self._cavity(
            s, into_gap_upper, into_gap_lower, gap, kept_upper, kept_lower, target.half_width, lower_reach
        )
        # Fade from the kept photo rows into the cavity over ~1.5 px; against a lip with nothing kept
        # the cavity goes right up to the inner contour, anti-aliased.
        far = np.float32(1e3)
        from_kept = np.minimum(
            np.where(kept_upper > 0.5, into_gap_upper, far), np.where(kept_lower > 0.5, into_gap_lower, far)
        )
        weight = np.clip(from_kept / 1.5 + 0.5, 0.0, 1.0) * np.clip(gap, 0.0, 1.0)
        weight = (weight * polygon_alpha(points[list(INNER_LIP)].astype(np.float32), box))[..., None]
        return photo.astype(np.float32) * (1.0 - weight) + cavity * weight

    def _cavity(
        self,
        s: np.ndarray,
        below_upper: np.ndarray,
        above_lower: np.ndarray,
        gap: np.ndarray,
        kept_upper: np.ndarray,
        kept_lower: np.ndarray,
        half_width: float,
        lower_reach: float,
    ) -> np.ndarray:
        """Dark mouth cavity with teeth bands over the gap: float32 [h, w, 3] RGB 0-255."""
        mouth_width = 2.0 * half_width
        lateral = np.clip(np.abs(s), 0.0, 1.0)
        depth_v = np.clip(below_upper / np.maximum(gap, 1e-3), 0.0, 1.0)
        # darkest in the middle of the opening, a little lighter toward the lips and corners
        depth = (1.0 - lateral**2) * np.sin(np.pi * depth_v) * smoothstep(0.0, 0.25 * mouth_width, gap)
        shade = (0.42 - 0.28 * depth)[..., None]
        out = self.lip_rgb * _CAVITY_TINT * shade
        # the tongue catches some light low in a wide-open mouth
        tongue = smoothstep(0.55, 1.0, depth_v) * (1.0 - lateral**2) * smoothstep(0.15, 0.35, gap / mouth_width)
        out = out + (0.4 * tongue)[..., None] * (self.lip_rgb * _TONGUE_TINT - out)

        # upper teeth under the upper lip, unless the photo's own interior already supplies them
        upper_h = np.minimum(0.45 * gap, 0.14 * mouth_width) * (kept_upper < 0.5)
        out = self._teeth(out, upper_h, below_upper, lateral, s, mouth_width, brightness=1.0, reach=0.95)
        # a smaller, shadowed lower row above the lower lip once the mouth is well open
        lower_h = np.clip(0.3 * gap - 0.05 * mouth_width, 0.0, 0.09 * mouth_width) * (kept_lower < 0.5)
        out = self._teeth(out, lower_h, above_lower, lateral, s, mouth_width, brightness=0.68, reach=lower_reach)
        return out

    def _teeth(
        self,
        out: np.ndarray,
        band: np.ndarray,
        depth: np.ndarray,
        lateral: np.ndarray,
        s: np.ndarray,
        mouth_width: float,
        brightness: float,
        reach: float,
    ) -> np.ndarray:
        """Blend a teeth band `band` px tall, `depth` px from its lip, over `out`."""
        if not np.any(band > 0.3):
            return out
        # soft edge away from the lip; fade out toward the mouth corners
        cover = np.clip((band - depth) / 1.2 + 0.5, 0.0, 1.0) * (depth >= -0.5)
        cover = cover * (1.0 - smoothstep(0.6 * reach, reach, lateral)) * np.clip(band, 0.0, 1.0)
        # rounder toward the corners, a shadow under the lip, faint gaps between the incisors
        shade = (1.0 - 0.5 * lateral**2) * (0.72 + 0.28 * smoothstep(0.0, 1.5, depth))
        pitch = 0.22  # one tooth is ~11 % of the mouth's width: 0.22 in s units
        to_gap = np.abs((s / pitch + 0.5) % 1.0 - 0.5) * pitch * (mouth_width / 2.0)  # px to a gap
        shade = (brightness * shade * (1.0 - 0.07 * (1.0 - smoothstep(0.0, 0.7, to_gap))))[..., None]
        # shadowed enamel darkens toward the cavity's warm colour rather than toward grey
        teeth = out + shade * (self.teeth_rgb - out)
        return out + cover[..., None] * (teeth - out)

    # -- once per portrait -----------------------------------------------------------------------

    def _analyse_source_interior(self) -> tuple[float, np.ndarray]:
        """Where the photo's open mouth splits between the lips, and the colour of its teeth.

        Returns (split in [0, 1]: the fraction of the interior that rides with the upper lip,
        teeth RGB float32 [3]).
        """
        default_teeth = _TEETH_RGB * float(np.clip(_luminance(self.lip_rgb) / 140.0, 0.7, 1.0))
        if not self.source_open:
            return 0.5, default_teeth
        rows = np.linspace(0.1, 0.9, 9, dtype=np.float32)
        cols = np.linspace(-0.6, 0.6, 13, dtype=np.float32)
        s, v = np.meshgrid(cols, rows)                           # [rows, cols]
        upper_t, lower_t = self._source.lips_at(s)
        map_x, map_y = self._source.image(s, upper_t + v * (lower_t - upper_t))
        samples = cv2.remap(self._image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        samples = samples.astype(np.float32)
        lum = _luminance(samples)                                # [rows, cols]
        profile = lum.mean(axis=1)
        darkest = int(np.argmin(profile))
        lip_lum = _luminance(self.lip_rgb)
        if profile[darkest] < 0.7 * profile.max():
            split = float(rows[darkest])
        elif profile.mean() > lip_lum:                           # all teeth: upper teeth show in a smile
            split = 1.0
        else:
            split = 0.5
        bright = lum >= np.percentile(lum, 75)
        teeth = samples[bright].mean(axis=0)
        if _luminance(teeth) < 1.15 * lip_lum:
            teeth = default_teeth
        return split, teeth.astype(np.float32)


def _grow(polygon: np.ndarray, pixels: float) -> np.ndarray:
    """Push each vertex of a convex-ish polygon [N, 2] `pixels` further from its centroid."""
    offset = polygon - polygon.mean(axis=0)
    norm = np.maximum(np.linalg.norm(offset, axis=1, keepdims=True), 1e-6)
    return (polygon + offset / norm * pixels).astype(np.float32)


def _lip_colour(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Median RGB of the lip ring (outer contour minus inner contour) of the photo: float32 [3]."""
    height, width = image.shape[:2]
    outer = reference[list(OUTER_LIP)].astype(np.float32)
    box = box_around(outer, 1.0, height, width)
    if box.empty:
        return np.array([150.0, 80.0, 80.0], np.float32)
    ring = (polygon_alpha(outer, box) > 0.5) & (polygon_alpha(reference[list(INNER_LIP)], box) < 0.5)
    pixels = image[box.slices][ring]
    if len(pixels) < 4:
        return np.array([150.0, 80.0, 80.0], np.float32)
    return np.median(pixels.astype(np.float32), axis=0)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of RGB values (last axis)."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
