"""Eyelids for the warp engine: a blink covers the eye with lid skin instead of squashing it.

A dense warp closes an eye by squashing the eyeball between the lids, which can leave iris and
sclera pixels smeared along (or above) the lid line, or, where the flow cannot follow the lids,
leave the eye open. `Eyelids` uses the frame's backward map to find every output pixel that shows
the photo's eyeball (the inside of its eye contour) and paints lid skin, coloured like the skin just
above the eye, over those that lie outside the target's lid opening; as the eye nears full closure
the remaining slit is covered too and a lash line is drawn where the lids meet, so a closed eye shows
no iris or sclera. Per-frame work happens inside each eye's bounding box only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .raster import MapWindow, box_around, polygon_alpha, smoothstep

# iBUG-68 indices: (outer/inner corners, upper lid, lower lid, brow) per eye; "right" is the
# subject's right eye, on the image's left.
_EYES = (
    dict(corners=(36, 39), upper=(37, 38), lower=(41, 40), contour=(36, 37, 38, 39, 40, 41), brow=(17, 18, 19, 20, 21)),
    dict(corners=(42, 45), upper=(43, 44), lower=(47, 46), contour=(42, 43, 44, 45, 46, 47), brow=(22, 23, 24, 25, 26)),
)


_LIDS = tuple((list(spec["upper"]), list(spec["lower"])) for spec in _EYES)  # per eye: upper, lower lid indices


def eye_aperture(points: np.ndarray, eye: int) -> float:
    """Mean distance between upper and lower lid landmarks of one eye (0 = subject's right), px.

    points: float32 [68, 2] iBUG landmarks in pixels (x, y).
    """
    upper, lower = _LIDS[eye]
    d = points[upper] - points[lower]
    d = d * d
    gaps = np.sqrt(d[:, 0] + d[:, 1])  # = np.linalg.norm of each pair, without a call per pair
    return float((gaps[0] + gaps[1]) / 2)


@dataclass(frozen=True)
class _EyeSource:
    """What the photo says about one eye."""

    contour: tuple[int, ...]    # iBUG indices of the eye polygon (corner, upper x2, corner, lower x2)
    points: np.ndarray           # float64 [6, 2], the photo's eye polygon
    aperture: float              # upper-to-lower lid distance in the photo, px
    lid_rgb: np.ndarray          # float32 [3], skin just above the upper lid
    under_rgb: np.ndarray        # float32 [3], skin just below the lower lid
    lash_rgb: np.ndarray         # float32 [3], the upper lid's lash line
    mask: np.ndarray             # float32 [h, w], anti-aliased inside of the photo's eye contour
    mask_origin: tuple[int, int]  # (x, y) of `mask`'s top-left pixel in the photo


class Eyelids:
    """Covers (partly) closed eyes with lid skin on warped frames of one portrait.

    image: uint8 [H, W, 3] RGB, the portrait.
    reference: float32 [68, 2], the portrait's own iBUG landmarks in pixels (x, y).
    min_closure: closure (1 - aperture / photo aperture) below which an eye is left as warped.
    """

    def __init__(self, image: np.ndarray, reference: np.ndarray, min_closure: float = 0.08) -> None:
        self._min_closure = float(min_closure)
        self._eyes = [self._analyse(image, reference, eye) for eye in range(len(_EYES))]

    def closure(self, points: np.ndarray, eye: int) -> float:
        """How closed eye `eye` of `points` is relative to the photo: 0 = as photographed, 1 = shut."""
        source = self._eyes[eye]
        if source.aperture < 1.0:  # the photo's eye is already closed: nothing to cover
            return 0.0
        return min(max(1.0 - eye_aperture(points, eye) / source.aperture, 0.0), 1.0)

    def apply(self, frame: np.ndarray, points: np.ndarray, mapping: MapWindow) -> bool:
        """Paint lid skin over the closed part of both eyes of `points` into `frame` in place.

        frame: uint8 [H, W, 3] RGB, the plain warp of the portrait to `points`.
        points: float32 [68, 2], the target landmarks in pixels (x, y).
        mapping: the backward map that made `frame` (photo pixel per output pixel).
        Returns whether anything changed.
        """
        changed = False
        for eye, source in enumerate(self._eyes):
            closure = self.closure(points, eye)
            if closure >= self._min_closure:
                changed |= self._cover(frame, points, mapping, source, closure)
        return changed

    def _cover(
        self,
        frame: np.ndarray,
        points: np.ndarray,
        mapping: MapWindow,
        source: _EyeSource,
        closure: float,
    ) -> bool:
        height, width = frame.shape[:2]
        target = points[list(source.contour)].astype(np.float64)
        rest = _carry(source.points, source.points[[0, 3]], target[[0, 3]])  # photo's eye, moved to target
        eye_width = float(np.linalg.norm(target[3] - target[0]))
        box = box_around(np.concatenate([target, rest]), 0.3 * eye_width + 2.0, height, width)
        if box.empty:
            return False
        # 1. Which output pixels show the photo's eyeball, whatever the flow did with it.
        map_x, map_y = mapping.crop(box)
        mx = map_x - np.float32(source.mask_origin[0])
        my = map_y - np.float32(source.mask_origin[1])
        eyeball = cv2.remap(source.mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if not eyeball.any():
            return False
        # 2. Cover those outside the target's lid opening; near closure the slit as well.
        slit = smoothstep(0.55, 0.95, closure)
        open_alpha = polygon_alpha(target.astype(np.float32), box)
        alpha = eyeball * (1.0 - open_alpha * (1.0 - slit)) * smoothstep(self._min_closure, 0.3, closure)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, 0.03 * eye_width))
        # 3. Lid skin: the skin just above the eye at the top, blending into the skin under the eye,
        #    a little darker toward the lash line where the lids meet.
        near, far = 0.12 * eye_width + 1.0, 0.25 * eye_width + 1.0
        above = _sample_band(frame, rest[[0, 1, 2, 3]], -near, -far)
        below = _sample_band(frame, target[[3, 4, 5, 0]], near, far)
        # the photo's colours steady what the warp shows there (dragged creases, leftover iris)
        above = _steady(above, source.lid_rgb)
        below = _steady(below, source.under_rgb)
        # the skin colour depends on the row alone: one column of it, [h, 1, 3], broadcast over the box
        ys = np.arange(box.y0, box.y1, dtype=np.float32)[:, None]
        top, bottom = float(rest[1:3, 1].mean()), float(target[4:6, 1].mean())
        depth = ((ys - top) / max(bottom - top, 1.0))[..., None]
        skin = above + (below - above) * smoothstep(0.5, 1.3, depth)
        skin = skin * (1.0 - 0.12 * slit * smoothstep(0.6, 1.0, depth))
        region = frame[box.slices]
        pixels = region.astype(np.float32)
        out = pixels + alpha[..., None] * (skin - pixels)
        # 4. The closed lid's lash line, along the target upper lid, as the slit closes.
        if slit > 0.0:
            lid = target[[0, 1, 2, 3]].astype(np.float32) - np.array([box.x0, box.y0], np.float32)
            line = np.zeros(alpha.shape, np.uint8)
            thickness = max(1, int(round(0.06 * eye_width)))
            cv2.polylines(line, [np.round(lid * 16).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, 4)
            lash = line.astype(np.float32)[..., None] * (0.55 * slit / 255.0)
            out = out + lash * (source.lash_rgb - out)
        region[...] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return True

    @staticmethod
    def _analyse(image: np.ndarray, reference: np.ndarray, eye: int) -> _EyeSource:
        spec = _EYES[eye]
        points = reference[list(spec["contour"])].astype(np.float64)
        height, width = image.shape[:2]
        box = box_around(points, 2.0, height, width)
        return _EyeSource(
            contour=spec["contour"],
            points=points,
            aperture=eye_aperture(reference, eye),
            lid_rgb=_lid_colour(image, reference, spec),
            under_rgb=_under_colour(image, points),
            lash_rgb=_lash_colour(image, points[[0, 1, 2, 3]]),
            mask=polygon_alpha(points.astype(np.float32), box),
            mask_origin=(box.x0, box.y0),
        )


def _carry(points: np.ndarray, source_pair: np.ndarray, target_pair: np.ndarray) -> np.ndarray:
    """Apply the similarity (rotation, scale, shift) taking `source_pair` [2,2] onto `target_pair`."""
    z = points[:, 0] + 1j * points[:, 1]
    s0, s1 = source_pair[:, 0] + 1j * source_pair[:, 1]
    t0, t1 = target_pair[:, 0] + 1j * target_pair[:, 1]
    a = (t1 - t0) / (s1 - s0) if abs(s1 - s0) > 1e-6 else 1.0
    moved = a * (z - s0) + t0
    return np.stack([moved.real, moved.imag], axis=1)


def _samples(image: np.ndarray, curve: np.ndarray, offsets: tuple[float, ...], count: int = 7) -> np.ndarray:
    """RGB float32 [len(offsets) * count, 3] at `count` inner points of the polyline `curve` [N, 2],
    each shifted down by every one of `offsets` px."""
    height, width = image.shape[:2]
    along = np.linspace(0.0, 1.0, count + 2)[1:-1]
    knots = np.linspace(0.0, 1.0, len(curve))
    xs = np.interp(along, knots, curve[:, 0])
    ys = np.interp(along, knots, curve[:, 1])[None, :] + np.asarray(offsets, np.float64)[:, None]
    cols = np.clip(np.round(xs).astype(int), 0, width - 1)
    rows = np.clip(np.round(ys).astype(int), 0, height - 1)
    return image[rows, cols[None, :]].reshape(-1, 3).astype(np.float32)


def _sample_band(frame: np.ndarray, curve: np.ndarray, near: float, far: float) -> np.ndarray:
    """Median RGB of `frame` along the polyline `curve` [N, 2] shifted down by `near`..`far` px."""
    return np.median(_samples(frame, curve, (near, (near + far) / 2.0, far)), axis=0)


def _luma(rgb: np.ndarray) -> float:
    return float(rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114)


def _steady(sampled: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """Average a colour sampled from the frame with the photo's; the photo's alone if the sample is
    much darker (lashes or iris where skin was expected)."""
    if _luma(sampled) < 0.8 * _luma(photo):
        return photo
    return 0.5 * (sampled + photo)


def _under_colour(image: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Median RGB of the photo's skin just below the lower lid of `eye` ([6, 2] contour), float32 [3]."""
    eye_width = float(np.linalg.norm(eye[3] - eye[0]))
    near, far = 0.12 * eye_width + 1.0, 0.25 * eye_width + 1.0
    return _sample_band(image, eye[[3, 4, 5, 0]], near, far)


def _lash_colour(image: np.ndarray, upper_lid: np.ndarray) -> np.ndarray:
    """RGB of the photo's upper lash line: the darker samples along the upper lid, float32 [3]."""
    samples = _samples(image, upper_lid, (-1.0, 0.0, 1.0))
    luma = samples @ np.array([0.299, 0.587, 0.114], np.float32)
    return samples[luma <= np.percentile(luma, 30)].mean(axis=0)


def _lid_colour(image: np.ndarray, reference: np.ndarray, spec: dict) -> np.ndarray:
    """Median RGB of the skin band between the upper lid and the brow (its lower part): float32 [3]."""
    height, width = image.shape[:2]
    lid = reference[[spec["corners"][0], *spec["upper"], spec["corners"][1]]].astype(np.float64)
    brow_drop = float(reference[list(spec["brow"]), 1].mean() - lid[:, 1].mean())  # < 0: brow above
    near, far = lid.copy(), lid.copy()
    near[:, 1] += 0.3 * brow_drop
    far[:, 1] += 0.6 * brow_drop
    band = np.concatenate([near, far[::-1]]).astype(np.float32)
    box = box_around(band, 1.0, height, width)
    if box.empty:
        return np.array([200.0, 160.0, 140.0], np.float32)
    pixels = image[box.slices][polygon_alpha(band, box) > 0.5]
    if len(pixels) < 4:
        pixels = image[box.slices].reshape(-1, 3)
    return np.median(pixels.astype(np.float32), axis=0)
