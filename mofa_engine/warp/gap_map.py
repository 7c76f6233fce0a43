"""The eyelid / inner-lip gap map L of the warp engine (`analytic_flow.py`): exact and always increasing.

An exact, always-increasing map handles large gap changes: per eye and for the inner lips, a
piecewise-linear map along the lid (lip) normal takes the part of a gap change beyond `gap_ratio`
(a blink, a mouth opening from closed) that a smooth spline would only reach by overshooting.
Increasing in v, it cannot fold. Owns the openings' landmark layout (`OPENINGS`, the contour
midpoints, which lid each knot lies on), `Opening` (L for one opening), `fit_opening` and the
full-resolution application `full_resolution_patches`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .raster import sample_bilinear

# openings: (corner, corner, ((upper, lower), ...)) for the two eyes and the inner lips
OPENINGS = ((36, 39, ((37, 41), (38, 40))), (42, 45, ((43, 47), (44, 46))),
            (60, 64, ((61, 67), (62, 66), (63, 65))))
# closed contours (eyes, inner lips) that get a spline knot between consecutive points
CONTOURS = (tuple(range(36, 42)), tuple(range(42, 48)), tuple(range(60, 68)))
MID_A = np.array([c[i] for c in CONTOURS for i in range(len(c))])  # a midpoint's first end
MID_B = np.array([c[(i + 1) % len(c)] for c in CONTOURS for i in range(len(c))])  # and its second


def _lid_sides() -> np.ndarray:
    """Per opening, for the 68 landmarks + contour midpoints: -1 on its upper lid/lip, +1 lower, 0 else."""
    sides = np.zeros((len(OPENINGS), 68 + len(MID_A)), np.int8)
    for i, (_, _, pairs) in enumerate(OPENINGS):
        sides[i, [up for up, _ in pairs]] = -1
        sides[i, [lo for _, lo in pairs]] = 1
        mids = sides[i, MID_A] + sides[i, MID_B]  # a midpoint lies on the lid of its ends
        sides[i, 68:] = np.sign(mids)
    return sides


LID_SIDES = _lid_sides()  # [openings, 68 + midpoints]


@dataclass
class Opening:
    """L for one eye or the inner lips, in output pixels (see the module docstring).

    Along each column u (corner to corner) the output gap [v_up, v_low] is mapped onto the gap the
    spline sees, larger by `delta` (> 0 in a blink, < 0 when a mouth opens); bands of height `band`
    above and below absorb the shift. Piecewise linear and increasing in v: dL_v/dv > 0.
    """

    origin: np.ndarray  # [2] first corner
    u_axis: np.ndarray  # [2] unit, corner to corner
    v_axis: np.ndarray  # [2] unit, toward the lower lid / lip
    us: np.ndarray  # [n] columns: corner, pairs..., corner
    v_up: np.ndarray  # [n]
    v_low: np.ndarray  # [n]
    delta: np.ndarray  # [n] spline gap - output gap (0 at the corners)
    band: float

    def __post_init__(self) -> None:
        # the band of v L can move, and its box's corners in (u, v)
        self.v_first = float(self.v_up.min()) - self.band
        self.v_last = float(self.v_low.max()) + self.band

    def apply(self, y: np.ndarray, side: np.ndarray | None = None) -> np.ndarray:
        """L(y) for points `[G, 2]`; side (`[G]`, -1/+1/0) pins points on the upper/lower lid to
        their lid's side of the map, which matters when the lids touch (a closed eye)."""
        rel = y - self.origin
        u, v = rel @ self.u_axis, rel @ self.v_axis
        inside = np.flatnonzero((u > self.us[0]) & (u < self.us[-1]) & (v > self.v_first) & (v < self.v_last))
        if not len(inside):
            return y
        u, v = u[inside], v[inside]
        up, low = np.interp(u, self.us, self.v_up), np.interp(u, self.us, self.v_low)
        delta = np.interp(u, self.us, self.delta)
        gap = np.maximum(low - up, 0.25)
        a, half = self.band, 0.5 * delta
        new = np.where(v <= up, (up - a) + (v - up + a) * (a - half) / a,
                       np.where(v <= low, up - half + (v - up) * (gap + delta) / gap,
                                (low + half) + (v - low) * (a - half) / a))
        new = np.where((v <= up - a) | (v >= low + a), v, new)
        if side is not None:
            side = side[inside]
            new = np.where(side < 0, v - half, np.where(side > 0, v + half, new))
        out = y.copy()
        out[inside] = y[inside] + (new - v)[:, None] * self.v_axis
        return out

    def box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Integer (x0, y0, x1, y1) bounding the pixels L moves."""
        (ox, oy), (ux, uy), (vx, vy) = self.origin.tolist(), self.u_axis.tolist(), self.v_axis.tolist()
        us, vs = (float(self.us[0]), float(self.us[-1])), (self.v_first, self.v_last)
        xs = [ox + u * ux + v * vx for u in us for v in vs]
        ys = [oy + u * uy + v * vy for u in us for v in vs]
        x0, y0 = max(math.floor(min(xs)) - 1, 0), max(math.floor(min(ys)) - 1, 0)
        x1, y1 = min(max(math.ceil(max(xs)) + 2, 0), width), min(max(math.ceil(max(ys)) + 2, 0), height)
        return x0, y0, x1, y1


def fit_opening(p: np.ndarray, r: np.ndarray, spec, scale: float, down: np.ndarray, ref_down: np.ndarray,
                face_height: float, options) -> Opening:
    """Build L for one opening; uncrosses lids/lips in `p`, opens closed lips in `r` (in place).

    p: float64 `[68, 2]` target landmarks (pixels); r: float64 `[68, 2]` reference landmarks.
    spec: one entry of `OPENINGS`. scale: the head's similarity scale (reference -> target).
    down: unit `[2]` face-down direction in the target frame; ref_down: the same in the portrait.
    face_height: the portrait's face height (pixels). options: `AnalyticFlowOptions` (reads
    `gap_ratio`, `gap_slack`, `min_gap`).
    """
    corner_a, corner_b, pairs = spec
    # a handful of points: plain Python floats cost far less than numpy calls on 2-vectors
    ax, ay = p[corner_a].tolist()
    bx, by = p[corner_b].tolist()
    dx, dy = (float(c) for c in ref_down)
    width = max(math.hypot(bx - ax, by - ay), 1e-6)
    ux, uy = (bx - ax) / width, (by - ay) / width
    vx, vy = (-uy, ux) if -uy * down[0] + ux * down[1] >= 0 else (uy, -ux)
    slack = options.gap_slack * face_height * scale
    ratio = options.gap_ratio
    us, v_up, v_low, delta = [0.0], [0.0], [0.0], [0.0]
    for up, lo in pairs:
        (pux, puy), (plx, ply) = p[up].tolist(), p[lo].tolist()
        gap = (plx - pux) * vx + (ply - puy) * vy
        if gap < 0:  # crossed lids / lips: both to the middle
            pux = plx = 0.5 * (pux + plx)
            puy = ply = 0.5 * (puy + ply)
            p[up] = p[lo] = (pux, puy)
            gap = 0.0
        (rux, ruy), (rlx, rly) = r[up].tolist(), r[lo].tolist()
        ref_gap = max((rlx - rux) * dx + (rly - ruy) * dy, 0.0) * scale
        seen = min(max(gap, ref_gap / ratio), max(ref_gap * ratio + slack, options.min_gap * gap))
        if ref_gap < seen / ratio:  # a closed mouth opens: stretch a sliver of the lips
            grow = 0.5 * (seen / ratio - ref_gap) / scale
            r[up] = (rux - grow * dx, ruy - grow * dy)
            r[lo] = (rlx + grow * dx, rly + grow * dy)
        us.append(max(((pux + plx) * 0.5 - ax) * ux + ((puy + ply) * 0.5 - ay) * uy, us[-1]))  # never backwards
        v_up.append((pux - ax) * vx + (puy - ay) * vy)
        v_low.append((plx - ax) * vx + (ply - ay) * vy)
        delta.append(seen - gap)
    end = (bx - ax) * vx + (by - ay) * vy
    us.append(max(width, us[-1]))
    v_up.append(end)
    v_low.append(end)
    delta.append(0.0)
    band = max(1.5 * max(abs(d) for d in delta), 0.5 * width)
    return Opening(np.array([ax, ay]), np.array([ux, uy]), np.array([vx, vy]), np.array(us), np.array(v_up),
                   np.array(v_low), np.array(delta), band)


def full_resolution_patches(openings: list[Opening], base: np.ndarray, smooth: np.ndarray,
                            height: int, width: int, origin: tuple[int, int] = (0, 0)) -> list:
    """B(y) = L(y) + smooth(L(y)) where L moves a pixel, read before `smooth` is overwritten.

    base: float32 `[H, W, 2]` pixel positions; smooth: float32 `[h, w, 2]` displacement of the smooth
    part on the pixels from `origin` (x, y) on (the whole image by default; it must cover the openings).
    Returns `[((x0, y0, x1, y1), moved [n] bool, values [m, 2] absolute positions), ...]`, one per
    opening box with moved pixels, to paste into the map.
    """
    patches, boxes = [], [opening.box(height, width) for opening in openings]
    for x0, y0, x1, y1 in boxes:
        if x1 <= x0 or y1 <= y0:
            continue
        pts = base[y0:y1, x0:x1].reshape(-1, 2).astype(np.float64)
        z = pts
        for opening, (a0, b0, a1, b1) in zip(openings, boxes, strict=True):  # those touching this box
            if a0 < x1 and x0 < a1 and b0 < y1 and y0 < b1:
                z = opening.apply(z)
        moved = np.any(z != pts, axis=1)
        if moved.any():
            # shift in float32 (exact), so cv2's 1/32 px sampling grid sees the same fractions as unshifted
            shifted = z[moved].astype(np.float32) - np.asarray(origin, np.float32)
            patches.append(((x0, y0, x1, y1), moved, z[moved] + sample_bilinear(smooth, shifted)))
    return patches
