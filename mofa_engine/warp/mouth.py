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

import math

import cv2
import numpy as np

from .raster import _SUBPIXEL_BITS, Box, box_around, polygon_alpha

INNER_UPPER = (60, 61, 62, 63, 64)  # inner upper lip, left corner to right corner (image order)
INNER_LOWER = (60, 67, 66, 65, 64)  # inner lower lip, same direction
INNER_LIP = tuple(range(60, 68))    # inner contour polygon
OUTER_LIP = tuple(range(48, 60))    # outer contour polygon
_PROFILE = np.array(INNER_UPPER + INNER_LOWER) - 60  # both inner lips, as indices into INNER_LIP

_TEETH_RGB = np.array([232.0, 226.0, 210.0], np.float32)  # off-white when the photo shows none
_CAVITY_TINT = np.array([1.1, 0.78, 0.78], np.float32)   # the cavity is the lips' colour, darker and redder
_TONGUE_TINT = np.array([0.75, 0.42, 0.42], np.float32)
_LIP_MARGIN = 1.0  # px past the inner-lip landmarks where the photo's lips are surely lips

# Performance note: the per-frame work below runs on a box of ~10^3 pixels, where each numpy call
# costs more in overhead than in arithmetic. So the code avoids calls rather than flops: masks and
# ramps shared by several terms are computed once, results are updated in place, np.clip (slow on
# small arrays) is spelt np.minimum/np.maximum, and work that cannot change a pixel (an empty teeth
# band, a cavity with no weight) is skipped. The arithmetic itself, dtypes included, is kept as it
# was written first, so frames are bit-identical to the straightforward version.


def inner_lip_aperture(points: np.ndarray) -> float:
    """Mean gap between the inner upper lip (61-63) and inner lower lip (67-65), in pixels.

    points: float32 [68, 2] iBUG landmarks, pixels (x, y).
    """
    d = points[65:68][::-1] - points[61:64]  # pairs 61-67, 62-66, 63-65
    d = d * d
    gaps = np.sqrt(d[:, 0] + d[:, 1])
    return float((gaps[0] + gaps[1] + gaps[2]) / 3)


class _MouthAxes:
    """Mouth-aligned coordinates of one set of landmarks: s along 60->64 in [-1, 1], t across it.

    The geometry is held in float64 (the landmarks are float32), so that maps into the photo keep
    sub-pixel precision; per-pixel results come out float32.
    """

    def __init__(self, points: np.ndarray) -> None:
        (lx, ly), (rx, ry) = points[60].tolist(), points[64].tolist()
        sx, sy = rx - lx, ry - ly
        length = math.sqrt(sx * sx + sy * sy)
        ax, ay = (sx / length, sy / length) if length > 1e-3 else (1.0, 0.0)
        self.axis = (ax, ay)
        self.normal = (-ay, ax)  # points toward the chin
        self.origin = ((lx + rx) / 2.0, (ly + ry) / 2.0)
        self.half_width = max(length / 2.0, 1e-3)
        # the inner lips' (s, t) profiles, from eight points: plain Python floats beat numpy calls here
        s, t = [], []
        for x, y in points[60:68].tolist():  # INNER_LIP
            dx, dy = x - self.origin[0], y - self.origin[1]
            s.append((dx * ax + dy * ay) / self.half_width)
            t.append(dx * self.normal[0] + dy * self.normal[1])
        s, t = np.array(s, np.float32)[_PROFILE], np.array(t, np.float32)[_PROFILE]
        # np.interp needs increasing s
        self.upper = (np.maximum.accumulate(s[:5]), t[:5])
        self.lower = (np.maximum.accumulate(s[5:]), t[5:])

    def grid(self, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """(s, t) at the pixel centres of `box` (cv2's convention): float32 [h, w] each.

        Separable: one row of x terms plus one column of y terms, broadcast to the box.
        """
        dx = np.arange(box.x0, box.x1, dtype=np.float64) - self.origin[0]
        dy = (np.arange(box.y0, box.y1, dtype=np.float64) - self.origin[1])[:, None]
        s = np.add(dx * self.axis[0], dy * self.axis[1])
        s /= self.half_width
        t = np.add(dx * self.normal[0], dy * self.normal[1])
        return s.astype(np.float32), t.astype(np.float32)

    def image(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(s, t) [h, w] -> image (x, y) as float32 [2, h, w], computed in float64."""
        if not hasattr(self, "_axes64"):  # [2, 1, 1] columns: x and y of the axis, normal, origin
            self._axes64 = [np.array(v, np.float64)[:, None, None] for v in (self.axis, self.normal, self.origin)]
        axis, normal, origin = self._axes64
        xy = (s * self.half_width).astype(np.float64) * axis
        xy += origin
        xy += t.astype(np.float64) * normal
        return xy.astype(np.float32)

    def lips_at(self, s: np.ndarray) -> np.ndarray:
        """t of the inner upper and inner lower lip at each s (piecewise linear): float32 [2, ...].

        s: float64 (np.interp would convert anything else, once per call).
        """
        out = np.empty((2, *s.shape), np.float32)
        out[0] = np.interp(s, *self.upper)
        out[1] = np.interp(s, *self.lower)
        return out


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
        # Per-frame arrays come in (upper, lower) pairs stacked as [2, h, w], so that one numpy call
        # serves both lips; these are the per-lip constants as [2, 1, 1] columns.
        self._sides = np.array([self.split, 1.0 - self.split], np.float32)[:, None, None]
        self._lower_first = np.array([1.0, -1.0], np.float32)[:, None, None]  # t - lip -> (t - upper, lower - t)
        # per-channel colours as [3, 1, 1], to broadcast over channel-planar [3, h, w] images
        self._cavity_rgb = (self.lip_rgb * _CAVITY_TINT)[:, None, None]  # the cavity at full shade
        self._tongue_rgb = (self.lip_rgb * _TONGUE_TINT)[:, None, None]
        self._enamel_rgb = self.teeth_rgb[:, None, None]

    # -- per frame -------------------------------------------------------------------------------

    def apply(self, frame: np.ndarray, points: np.ndarray) -> bool:
        """Paint the mouth interior of `points` into `frame` in place; return whether anything changed.

        frame: uint8 [H, W, 3] RGB, the plain warp of the portrait to `points`.
        points: float32 [68, 2], the target landmarks in pixels (x, y).
        """
        aperture = inner_lip_aperture(points)
        strength = min(max(aperture - self._closed_px, 0.0), 1.0)
        if strength <= 0.0:
            return False
        height, width = frame.shape[:2]
        inner = points[60:68].astype(np.float32)  # INNER_LIP
        # 2 px beyond the inner contour: the warp may smear the photo's teeth just past the lips;
        # out there the interior samples the photo's own lips
        polygon = _grow(inner, _LIP_MARGIN + 1.0)
        box = box_around(polygon, 1.0, height, width)
        if box.empty:
            return False
        alpha, inside = _coverage(np.stack([polygon, inner]), box)
        alpha *= strength
        if not alpha.any():
            return False
        out = self._interior(points, inside, box)  # float32 [3, h, w]
        region = frame[box.slices]
        pixels = region.transpose(2, 0, 1).astype(np.float32)  # [h, w, 3] -> [3, h, w]
        out -= pixels
        out *= alpha
        out += pixels
        out += 0.5
        np.minimum(np.maximum(out, 0, out=out), 255, out=out)  # np.clip is slower on small arrays
        region[...] = out.transpose(1, 2, 0)  # [3, h, w] -> [h, w, 3], truncated to uint8
        return True

    def _interior(self, points: np.ndarray, inside: np.ndarray, box: Box) -> np.ndarray:
        """What the mouth interior of `points` looks like over `box`: float32 [3, h, w] RGB 0-255,
        channel-planar (per-channel arithmetic on [h, w, 3] runs numpy's inner loop over 3 values at
        a time, several times slower on boxes this small). inside: float32 [h, w], the coverage of
        the target's inner-lip polygon."""
        target, source = _MouthAxes(points), self._source
        s, t = target.grid(box)
        s64 = s.astype(np.float64)
        lips = target.lips_at(s64)                             # [2, h, w]: t of the upper, lower lip
        height = np.maximum(lips[1] - lips[0], 0.0)            # target gap at each pixel's s
        into = t - lips
        into *= self._lower_first                              # [2, h, w]: distances to the two lips
        scale = target.half_width / source.half_width          # target px per source px

        # 1. The photo's own interior, kept unstretched: rows above the split ride with the upper
        #    lip, rows below it with the lower lip; `kept` is how much of it fits at each s.
        src_lips = source.lips_at(s64)
        if self.source_open:
            kept = np.maximum(src_lips[1] - src_lips[0], 0.0)
            kept *= scale
            np.minimum(kept, height, out=kept)
        else:
            kept = np.zeros_like(height)
        kept_sides = self._sides * kept                        # [2, h, w]: kept under each lip
        gap = height - kept                                    # what must be synthesised
        into_gap = into - kept_sides                           # [2, h, w]: distances into the gap
        kept_here = kept_sides > 0.5
        use_upper = into_gap[0] <= gap * 0.5
        # never sample deeper into the photo's interior than the part that is kept; where nothing
        # is kept on a side and a gap opens, sample its lip from 1 px further out (the photo's teeth
        # can reach a pixel past its inner-lip landmarks)
        margin = -_LIP_MARGIN * np.minimum(gap, 1.0)
        into += np.where(kept_here, 0.0, margin)
        np.minimum(into, kept_sides, out=into)
        into /= scale
        into *= self._lower_first                              # the lower lip's rows count upward
        into += src_lips                                       # [2, h, w]: photo t for each lip
        map_xy = source.image(s, np.where(use_upper, into[0], into[1]))
        photo = cv2.remap(self._image, map_xy[0], map_xy[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        photo = photo.transpose(2, 0, 1).astype(np.float32)  # [h, w, 3] -> [3, h, w]

        # 2. Fade from the kept photo rows into the cavity over ~1.5 px; against a lip with nothing
        #    kept the cavity goes right up to the inner contour, anti-aliased.
        from_kept = np.where(kept_here, into_gap, np.float32(1e3))
        weight = np.minimum(from_kept[0], from_kept[1])
        weight /= 1.5
        weight += 0.5
        np.minimum(np.maximum(weight, 0.0, out=weight), 1.0, out=weight)
        weight *= np.minimum(np.maximum(gap, 0.0), 1.0)
        weight *= inside
        if not weight.any():  # the photo's interior fills the whole opening
            return photo
        # 3. The synthesised cavity (with teeth) in the gap.
        cavity = self._cavity(s, into_gap, gap, kept_sides, target)
        photo *= 1.0 - weight
        cavity *= weight
        photo += cavity
        return photo

    def _cavity(
        self, s: np.ndarray, into_gap: np.ndarray, gap: np.ndarray, kept_sides: np.ndarray, target: _MouthAxes
    ) -> np.ndarray:
        """Dark mouth cavity with teeth bands over the gap: float32 [3, h, w] RGB 0-255.

        s: float32 [h, w], target mouth coordinate; into_gap: float32 [2, h, w], px from the upper
        and lower lip (or the photo rows kept there) into the gap; gap: float32 [h, w], its height;
        kept_sides: float32 [2, h, w], px of the photo's interior kept under each lip.
        """
        mouth_width = 2.0 * target.half_width
        lateral = np.minimum(np.abs(s), 1.0)
        rounder = 1.0 - lateral * lateral                     # 1 at the middle, 0 at the corners
        depth_v = into_gap[0] / np.maximum(gap, 1e-3)
        np.minimum(np.maximum(depth_v, 0.0, out=depth_v), 1.0, out=depth_v)
        # darkest in the middle of the opening, a little lighter toward the lips and corners
        depth = rounder * np.sin(np.pi * depth_v)
        depth *= _smooth(gap, 0.0, 0.25 * mouth_width)
        out = self._cavity_rgb * (0.42 - 0.28 * depth)
        # the tongue catches some light low in a wide-open mouth
        tongue = _smooth(depth_v, 0.55, 1.0)
        tongue *= rounder
        tongue *= _smooth(gap / mouth_width, 0.15, 0.35)
        tongue *= 0.4
        lift = self._tongue_rgb - out
        lift *= tongue
        out += lift

        # Teeth bands, [2, h, w]: upper teeth under the upper lip, a smaller, shadowed lower row
        # above the lower lip once the mouth is well open; neither where the photo's own interior
        # already supplies them.
        bands = np.empty_like(kept_sides)
        np.minimum(0.45 * gap, 0.14 * mouth_width, out=bands[0])
        np.minimum(np.maximum(0.3 * gap - 0.05 * mouth_width, 0.0), 0.09 * mouth_width, out=bands[1])
        bands *= kept_sides < 0.5
        shown = (bands.max(axis=(1, 2)) > 0.3).tolist()        # an empty band changes no pixel
        if not any(shown):
            return out
        # lower teeth only show where the lower lip runs flat, between its inner points 67 and 65
        lower_s = target.lower[0]
        lower_reach = max(abs(lower_s[1]), abs(lower_s[3])) + 0.1  # float32, and so are its bounds
        lower_reach = float(min(max(lower_reach, np.float32(0.3)), np.float32(0.7)))
        sides = [side for side in (0, 1) if shown[side]]
        pick = slice(sides[0], sides[-1] + 1)                   # both bands, or the one shown
        brightness, reach = np.array([1.0, 0.68], np.float32), (0.95, lower_reach)
        # soft edge away from the lip; fade out toward the mouth corners
        depth = into_gap[pick]
        cover = bands[pick] - depth
        cover /= 1.2
        cover += 0.5
        np.minimum(np.maximum(cover, 0.0, out=cover), 1.0, out=cover)
        cover *= depth >= -0.5
        edges = np.array([[0.6 * reach[i], reach[i] - 0.6 * reach[i]] for i in sides], np.float32)[..., None, None]
        corner = lateral - edges[:, 0]
        corner /= edges[:, 1]
        cover *= 1.0 - _hermite(corner)                        # = smoothstep(0.6 * reach, reach, lateral)
        cover *= np.minimum(np.maximum(bands[pick], 0.0), 1.0)
        # rounder toward the corners, a shadow under the lip, faint gaps between the incisors
        shade = (1.0 - 0.5 * (lateral * lateral)) * (0.72 + 0.28 * _smooth(depth, 0.0, 1.5))
        shade = brightness[pick, None, None] * shade * _incisor_gaps(s, mouth_width)
        for i in range(len(sides)):  # upper first: the lower row is painted over it
            # shadowed enamel darkens toward the cavity's warm colour rather than toward grey
            teeth = self._enamel_rgb - out
            teeth *= shade[i]
            teeth += out  # the teeth's colour; then its difference from `out` again, rounded as such
            teeth -= out
            teeth *= cover[i]
            out += teeth
        return out

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
        upper_t, lower_t = self._source.lips_at(s.astype(np.float64))
        map_xy = self._source.image(s, upper_t + v * (lower_t - upper_t))
        samples = cv2.remap(self._image, map_xy[0], map_xy[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
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


def _incisor_gaps(s: np.ndarray, mouth_width: float) -> np.ndarray:
    """Shade factor of faint gaps between the incisors at mouth coordinate `s` ([h, w] float32)."""
    pitch = 0.22  # one tooth is ~11 % of the mouth's width: 0.22 in s units
    phase = s / pitch
    phase += 0.5
    phase -= np.floor(phase)  # = phase % 1.0, exactly, at a fraction of np.remainder's cost
    phase -= 0.5
    to_gap = np.abs(phase, out=phase) * pitch * (mouth_width / 2.0)  # px to a gap
    return 1.0 - 0.07 * (1.0 - _smooth(to_gap, 0.0, 0.7))


def _smooth(x: np.ndarray, edge0: float, edge1: float) -> np.ndarray:
    """`raster.smoothstep(edge0, edge1, x)`, bit for bit, in fewer numpy calls (x - 0.0 is x)."""
    if edge0 == 0.0:
        return _hermite(x / (edge1 - edge0))
    u = x - edge0
    u /= edge1 - edge0
    return _hermite(u)


def _hermite(u: np.ndarray) -> np.ndarray:
    """smoothstep's ramp of `u` already scaled to its edges (0 at 0, 1 at 1); overwrites `u`."""
    np.minimum(np.maximum(u, 0.0, out=u), 1.0, out=u)
    ramp = 2.0 * u
    np.subtract(3.0, ramp, out=ramp)
    u *= u
    u *= ramp
    return u


def _coverage(polygons: np.ndarray, box: Box) -> np.ndarray:
    """`polygon_alpha` of several polygons ([K, N, 2] image x, y) over one box: float32 [K, h, w]."""
    masks = np.zeros((len(polygons), box.y1 - box.y0, box.x1 - box.x0), np.uint8)
    local = (polygons - np.array([box.x0, box.y0], np.float32)) * (1 << _SUBPIXEL_BITS)
    local = np.round(local).astype(np.int32)
    for mask, polygon in zip(masks, local, strict=True):
        cv2.fillPoly(mask, [polygon], 255, cv2.LINE_AA, _SUBPIXEL_BITS)
    return masks.astype(np.float32) * (1.0 / 255.0)


def _grow(polygon: np.ndarray, pixels: float) -> np.ndarray:
    """Push each vertex of a convex-ish polygon [N, 2] `pixels` further from its centroid."""
    offset = polygon - np.add.reduce(polygon, axis=0) / len(polygon)  # = polygon.mean(axis=0), minus its overhead
    norm = np.maximum(np.sqrt((offset * offset).sum(axis=1, keepdims=True)), 1e-6)  # = np.linalg.norm
    offset /= norm
    offset *= pixels
    offset += polygon
    return offset.astype(np.float32, copy=False)


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
