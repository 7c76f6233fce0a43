"""Analytic sparse-to-dense flow (warp engine): landmarks -> dense backward map, on one CPU core.

For frame t the renderer needs, for each output pixel y, where to sample the portrait: B(y).

    z    = L(y)                                   eyes and mouth open and close (full resolution)
    B(y) = z + m(S^-1 z) (S^-1 z - z) + w R(z) + J(z)

* S: similarity (scale, rotation, shift) fitted on landmarks that expressions barely move (upper jaw,
  nose, eye corners): the head's rigid motion; S^-1 z carries z back with the head.
* m: head weight in the portrait: 1 on the face, a falloff centred on the edge of the head region
  (face, hair, neck; the neck fading toward the shoulders), 0 in the background. The falloff is at
  least twice as wide as the motion at the head's edge, so the blend cannot fold.
* L: per eye and for the inner lips, a piecewise-linear map along the lid (lip) normal that is
  increasing, so it cannot fold: it takes the part of a gap change beyond `gap_ratio` (a blink, a
  mouth opening from closed) that a smooth spline would only reach by overshooting (`gap_map.py`).
* R: thin-plate spline with knots at L(target landmarks) (plus eye/lip contour midpoints) holding
  what is left after the rigid part, zero on a ring of anchors whose radius grows with the residuals;
  w fades it beyond the ring and, measured where the point samples the portrait, away from the face
  (1 on the face, so B(target landmark) = reference landmark).
* J: drags (`drag_field.DragField`), backward.
The smooth part (everything but L) is evaluated on a coarse grid and bilinearly upsampled; a bilinear
map has a positive Jacobian in a cell iff it does at the cell's 4 corners, which the fold guard
checks (L is increasing by construction). A frame that folds is refitted with more spline
smoothing, then with R and J scaled down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from mofa_engine.regions import face_frame, head_polygon, neck_polygon

from .drag_field import DragField
from .gap_map import LID_SIDES, MID_A, MID_B, OPENINGS, fit_opening, full_resolution_patches
from .raster import sample_bilinear

logger = logging.getLogger(__name__)

# landmarks that expressions barely move: upper jaw, nose, eye corners (iBUG, 0-based)
RIGID_POINTS = [0, 1, 2, 14, 15, 16, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45]
@dataclass(frozen=True)
class AnalyticFlowOptions:
    """Knobs of `AnalyticFlow` (the defaults are what the tests and the timings use)."""

    coarse_stride: int = 0  # grid step (px) of the smooth field; 0 = face height / 26 within [4, 8]
    falloff: float = 0.2  # smallest width of the head -> background blend, in face heights
    falloff_outside: float = 0.25  # part of that blend lying outside the head region (in the background)
    neck_length: float = 0.6  # the neck's weight fades to 0 this far below the chin, in face heights
    ring_gap: float = 0.45  # anchor ring beyond the outermost landmark, in face-ellipse radii
    ring_points: int = 16  # anchors on the ring
    smoothing: float = 1e-6  # thin-plate regularisation (coordinates in face heights)
    gap_ratio: float = 2.0  # the spline sees an eye/mouth gap change by at most this factor, plus
    gap_slack: float = 0.02  # this many face heights; L takes the rest
    min_gap: float = 0.25  # an opening mouth stretches at least this part of the spline's lip gap
    min_jacobian: float = 0.02  # fold guard: smallest accepted Jacobian determinant of the smooth part
    drag_radius: float = 0.06  # drag falloff sigma without brush, in image short sides
    support_only: bool = True  # evaluate the field only where it can be non-zero (exact; False = whole grid)

    def __post_init__(self) -> None:
        checks = {
            "coarse_stride": self.coarse_stride >= 0, "falloff": self.falloff > 0,
            "falloff_outside": 0 <= self.falloff_outside <= 1, "neck_length": self.neck_length > 0,
            "ring_gap": self.ring_gap > 0, "ring_points": self.ring_points >= 3, "smoothing": self.smoothing >= 0,
            "gap_ratio": self.gap_ratio >= 1, "gap_slack": self.gap_slack >= 0, "min_gap": 0 < self.min_gap <= 1,
            "drag_radius": self.drag_radius > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"AnalyticFlowOptions.{name} is out of range: {getattr(self, name)!r}")


def _smoothstep(z: np.ndarray) -> np.ndarray:
    z = np.minimum(np.maximum(z, 0.0), 1.0)  # np.clip costs more on arrays this small
    return z * z * (3.0 - 2.0 * z)


def _tps_eval(points: np.ndarray, fr: "_Frame") -> np.ndarray:
    """Thin-plate spline of frame `fr` at normalised points `[G, 2]` -> float64 `[G, 2]`.

    The hot loop: float32, one [G, N] temporary besides the squared distances, which come from one
    matrix product with the knots' augmented form ([x, y, 1] . [-2 kx, -2 ky, |k|^2], plus |p|^2).
    """
    aug = np.empty((len(points), 3), np.float32)
    aug[:, :2] = points
    aug[:, 2] = 1.0
    d2 = aug @ fr.knots_aug  # [G, N]
    d2 += (aug[:, 0] * aug[:, 0] + aug[:, 1] * aug[:, 1])[:, None]
    np.maximum(d2, 1e-12, out=d2)
    radial = np.log(d2)
    radial *= d2  # d2 log d2 = 2 U; the 0.5 is folded into the radial weights
    return (radial @ fr.radial_weights + aug @ fr.affine_weights).astype(np.float64)


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares (scale, R [2, 2], t [2]) with dst ~ scale * R @ src + t, no reflection.

    Umeyama's solution in its 2-D closed form: with centred points, the best angle is
    atan2(sum of cross products, sum of dot products) and the scale their norm over sum |src|^2.
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, ys = src - mu_s, dst - mu_d
    dot = float((xs * ys).sum())
    cross = float((xs[:, 0] * ys[:, 1] - xs[:, 1] * ys[:, 0]).sum())
    norm = np.hypot(dot, cross)
    c, s = (dot / norm, cross / norm) if norm > 0 else (1.0, 0.0)
    rot = np.array([[c, -s], [s, c]])
    scale = float(norm / max(float((xs * xs).sum()), 1e-12 * len(src)))
    return scale, rot, mu_d - scale * rot @ mu_s


def _distance_outside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) to the nearest nonzero pixel of `mask` (0 on it)."""
    return cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _fill(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    canvas = np.zeros((height, width), dtype=np.uint8)
    for poly in polygons:
        cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return canvas


def _cell_min_det(pos: np.ndarray, stride: float) -> float:
    """Smallest corner Jacobian determinant over the cells of an absolute grid map `[ny, nx, 2]`."""
    if pos.shape[0] < 2 or pos.shape[1] < 2:
        return 1.0
    ex = (pos[:, 1:] - pos[:, :-1]) / stride  # [ny, nx-1, 2]
    ey = (pos[1:] - pos[:-1]) / stride  # [ny-1, nx, 2]
    halves = (slice(None, -1), slice(1, None))  # a cell's top/bottom edge, left/right edge
    dets = ((ex[r, :, 0] * ey[:, c, 1] - ex[r, :, 1] * ey[:, c, 0]).min() for r in halves for c in halves)
    return float(min(dets))


@dataclass
class _Frame:
    """Everything fitted for one target frame."""

    scale: float
    rot: np.ndarray
    shift: np.ndarray
    openings: list  # [Opening]
    opening_ids: list  # their indices in OPENINGS
    drag_index: int | None
    falloff: float = 0.0  # px, head weight
    spread: float = 0.0  # px, falloff of the spline's weight around the face
    ring: float = 0.0  # ring radius in face-ellipse radii
    knots_aug: np.ndarray = field(default_factory=lambda: np.zeros((3, 0), np.float32))  # [3, N]: -2 x, -2 y, |k|^2
    radial_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # [N, 2] (0.5 folded in)
    affine_weights: np.ndarray = field(default_factory=lambda: np.zeros((3, 2), np.float32))  # [3, 2]: x, y, 1
    origin: np.ndarray = field(default_factory=lambda: np.zeros(2))
    unit: float = 1.0  # px per normalised unit
    local: float = 1.0  # scale of R and J (the fold guard's last resort)
    peak: float = 0.0  # px, the largest value the spline takes at a knot

    def close(self, y: np.ndarray, knots: bool = False) -> np.ndarray:
        """L(y); `knots=True` for the 68 landmarks + midpoints, whose lid sides are known."""
        for opening, i in zip(self.openings, self.opening_ids, strict=True):
            y = opening.apply(y, LID_SIDES[i] if knots else None)
        return y

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """S^-1 y for y `[G, 2]`."""
        return ((y - self.shift) @ self.rot) / self.scale


class AnalyticFlow:
    """Dense motion of a portrait from its landmarks: backward maps for cv2.remap, forward flows.

    reference: float `[68, 2]` (x, y) pixels of the portrait's landmarks (iBUG order).
    height, width: the portrait's size in pixels.
    region_mask: optional `[H, W]` (>= 0.5 = moves with the head). Default: face, hair and neck from
        the landmarks (`regions.py`), the neck fading toward the shoulders.
    trajectories: optional drags, float `[N_i, 2]` pixel arrays (`trajectories.parse_trajectories`),
        spread over `num_frames` frames; brush: optional `[H, W]` motion-brush mask (`DragField`).
    """

    def __init__(self, reference: np.ndarray, height: int, width: int,
                 region_mask: np.ndarray | None = None, *, trajectories=None,
                 brush: np.ndarray | None = None, num_frames: int | None = None,
                 options: AnalyticFlowOptions = AnalyticFlowOptions()) -> None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != (68, 2) or not np.isfinite(ref).all():
            raise ValueError(f"reference must be finite [68, 2] landmarks, got shape {ref.shape}")
        if height < 2 or width < 2:
            raise ValueError(f"image must be at least 2x2, got {height}x{width}")
        self.reference, self.height, self.width, self.options = ref, int(height), int(width), options
        self.frame = face_frame(ref)
        # face ellipse along the face's axes, scaled so that every landmark lies at radius <= 1
        self._axes_dirs = np.stack([self.frame.across, self.frame.down], 1)
        self.center = ref.mean(0)
        uv = (ref - self.center) @ self._axes_dirs
        axes = np.abs(uv).max(0)
        self.axes = axes * np.sqrt(((uv / axes) ** 2).sum(1)).max()
        # head weight ingredients: distance outside the face hull, signed distance to the head region
        hull = cv2.convexHull(ref[:27].astype(np.float32))[:, 0].astype(np.float64)  # jaw and brows
        face = _fill([hull], self.height, self.width)
        if region_mask is None:
            polygons = [head_polygon(ref), neck_polygon(ref, options.neck_length)]
            region = _fill(polygons, self.height, self.width)
        else:
            region_mask = np.asarray(region_mask)
            if region_mask.shape != (self.height, self.width):
                raise ValueError(f"region_mask must be [{self.height}, {self.width}], got {region_mask.shape}")
            region = (region_mask >= 0.5).astype(np.uint8)
        self._fade_neck = region_mask is None
        # signed distance with the edge half-way between pixels (slope 1 across it), then lightly blurred:
        # both maps stay 1-Lipschitz and lose their pixel-scale kinks
        signed = _distance_outside(region) - _distance_outside(1 - region) + np.where(region > 0, 0.5, -0.5)
        maps = np.stack([_distance_outside(face), signed], -1).astype(np.float32)
        self._maps = np.ascontiguousarray(cv2.GaussianBlur(maps, (0, 0), 2.0, borderType=cv2.BORDER_REPLICATE))
        # per row / column minimum of both distance maps: the bounding box of {distance < c} in O(H + W)
        self._face_distance = np.ascontiguousarray(self._maps[..., 0])  # [H, W]: sampled alone per frame
        self._row_min = self._maps.min(axis=1)  # [H, 2]
        self._col_min = self._maps.min(axis=0)  # [W, 2]
        self._ellipse_extent = np.linalg.norm(self._axes_dirs * self.axes, axis=1)  # x, y half extents at radius 1
        self._below_boxes: dict = {}  # (channel, threshold) -> `_below`'s box
        self._edge = head_polygon(ref)  # where the head meets the background (sizes the falloff)
        self.drags = None
        if trajectories:
            if num_frames is None:
                raise ValueError("trajectories need num_frames (the clip length)")
            self.drags = DragField(trajectories, brush, num_frames, self.height, self.width,
                                   options.drag_radius)
        ys, xs = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        self._base = np.stack([xs, ys], -1)  # [H, W, 2] pixel positions
        self._base.setflags(write=False)
        self._uv_lin = self._axes_dirs / self.axes  # portrait px -> face-ellipse coordinates (`_radius`)
        self._uv_off = self.center @ self._uv_lin
        # the neck's fade toward the shoulders, affine in the portrait point: 1 at the chin, 0 a neck below
        self._fade_dir = self.frame.down / (options.neck_length * self.frame.height)
        self._fade_at_zero = 1.0 + self.frame.chin @ self._fade_dir
        angles = np.linspace(0.0, 2 * np.pi, options.ring_points, endpoint=False)
        self._ring_dirs = np.stack([np.cos(angles), np.sin(angles)], 1) * self.axes @ self._axes_dirs.T
        cs = options.coarse_stride or int(np.clip(round(self.frame.height / 26.0), 4, 8))
        self.stride = cs
        self._coarse_shape = (-(-self.height // cs), -(-self.width // cs))
        gy, gx = np.mgrid[0:self._coarse_shape[0], 0:self._coarse_shape[1]] * float(cs)
        self._coarse_nodes = np.stack([gx, gy], -1) + (cs - 1) / 2.0  # [ny, nx, 2] pixel positions

    # ------------------------------------------------------------------ weights
    def _radius(self, x: np.ndarray) -> np.ndarray:
        """Face-ellipse radius of portrait points x `[G, 2]`."""
        uv = x @ self._uv_lin - self._uv_off
        uv *= uv
        return np.sqrt(uv[:, 0] + uv[:, 1])

    def _head_weight(self, x: np.ndarray, falloff: float) -> np.ndarray:
        """m at portrait points x `[G, 2]` for a blend `falloff` px wide."""
        dist = sample_bilinear(self._maps, x)
        face = _smoothstep(1.0 - dist[:, 0] / falloff)  # 1 on the face, 0 `falloff` px out
        region = _smoothstep(self.options.falloff_outside - dist[:, 1] / falloff)
        if self._fade_neck:
            region *= np.minimum(np.maximum(self._fade_at_zero - x @ self._fade_dir, 0.0), 1.0)
        return np.maximum(face, region)

    # ------------------------------------------------------------------ fitting
    def _fit(self, points: np.ndarray, drag_index: int | None, smoothing: float) -> _Frame:
        opt = self.options
        p, r = np.array(points, dtype=np.float64), self.reference.copy()
        scale, rot, shift = _similarity(r[RIGID_POINTS], p[RIGID_POINTS])
        openings = [fit_opening(p, r, spec, scale, rot @ self.frame.down, self.frame.down, self.frame.height, opt)
                    for spec in OPENINGS]
        ids = [i for i, o in enumerate(openings) if np.any(o.delta)]  # the spline alone does the rest
        fr = _Frame(scale, rot, shift, [openings[i] for i in ids], ids, drag_index)
        p = fr.close(np.concatenate([p, 0.5 * (p[MID_A] + p[MID_B])]), knots=True)  # spline's frame
        r = np.concatenate([r, 0.5 * (r[MID_A] + r[MID_B])])
        edge_motion = np.linalg.norm(self._edge @ (scale * rot).T + shift - self._edge, axis=1).max()
        fr.falloff = max(opt.falloff * self.frame.height, 2.0 * edge_motion / max(scale, 1e-6))
        back = fr.inverse(p)
        values = r - p - self._head_weight(back, fr.falloff)[:, None] * (back - p)  # px, per knot
        fr.spread = max(fr.falloff, 2.0 * float(np.abs(values).max()))
        reach = float(np.abs(values).max()) / scale / min(self.axes)
        fr.ring = max(1.0 + opt.ring_gap, self._radius(back).max() + opt.ring_gap, 1.0 + 2.0 * reach)
        ring = (self.center + fr.ring * self._ring_dirs) @ (scale * rot).T + shift  # anchors ride with the head
        fr.origin, fr.unit = scale * rot @ self.center + shift, scale * self.frame.height
        knots = (np.concatenate([p, ring]) - fr.origin) / fr.unit
        values = np.concatenate([values, np.zeros((len(ring), 2))])
        # knots closer than ~0.1 px (a closed mouth's inner lips) merge, averaging their values
        d2 = (knots[:, None, 0] - knots[None, :, 0]) ** 2 + (knots[:, None, 1] - knots[None, :, 1]) ** 2
        close = d2 < (0.1 / fr.unit) ** 2
        if np.count_nonzero(close) > len(knots):  # more than the diagonal
            keep, inverse = np.unique(np.argmax(close, axis=1), return_inverse=True)
            values_sum = np.zeros((len(keep), 2))
            np.add.at(values_sum, inverse, values)
            values = values_sum / np.bincount(inverse)[:, None]
            knots, d2 = knots[keep], d2[keep][:, keep]
        n = len(knots)
        fr.peak = float(np.abs(values).max(initial=0.0))
        np.maximum(d2, 1e-300, out=d2)
        system = np.empty((n + 3, n + 3))
        kernel = system[:n, :n]
        np.log(d2, out=kernel)
        kernel *= d2
        kernel *= 0.5  # U(r) = r^2 log r
        kernel.flat[:: n + 1] += smoothing
        system[n:, n:] = 0.0
        system[:n, n] = system[n, :n] = 1.0
        system[:n, n + 1:] = knots
        system[n + 1:, :n] = knots.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = values
        weights = np.linalg.solve(system, rhs)
        # normalised knots (x, y) with their spline weights (n of them), then the affine part's (1, x, y)
        fr.knots_aug = np.concatenate([-2.0 * knots.T, (knots * knots).sum(1)[None]]).astype(np.float32)
        fr.radial_weights = (0.5 * weights[:n]).astype(np.float32)  # `_tps_eval` computes d2 log d2 = 2 U
        fr.affine_weights = weights[[n + 1, n + 2, n]].astype(np.float32)
        return fr

    def _field(self, z: np.ndarray, fr: _Frame) -> np.ndarray:
        """Smooth part of B(z) - z at spline-frame points z `[G, 2]` (everything but L)."""
        back = fr.inverse(z)
        out = back - z
        out *= self._head_weight(back, fr.falloff)[:, None]
        radius = self._radius(back)
        live = np.flatnonzero(radius < 1.3 * fr.ring)  # the spline's window is 0 from 1.3 ring radii on
        if len(live) and fr.local > 0:
            before = z[live] + out[live]  # where the node samples the portrait, the spline aside
            chosen, spline = self._spline(z[live], before, fr)
            live, source = live[chosen], before[chosen] + spline
            # the spline's weight is taken where its point samples the portrait: 1 on the face (so at
            # every knot), falling off `spread` px outside it; an opened jaw drags the neck, not the shoulders
            near = _smoothstep(1.0 - sample_bilinear(self._face_distance, source)[:, 0] / fr.spread)
            win = 1.0 - _smoothstep((radius[live] - fr.ring) / (0.3 * fr.ring))
            out[live] += fr.local * (win * near)[:, None] * spline
        if self.drags is not None and fr.local > 0:
            out += fr.local * self.drags.backward(z, fr.drag_index)
        return out

    def _spline(self, z: np.ndarray, before: np.ndarray, fr: _Frame) -> tuple[np.ndarray | slice, np.ndarray]:
        """R at those of the points z `[G', 2]` that its weight can reach -> (which, R there `[g, 2]`).

        before: `[G', 2]` where each point samples the portrait without the spline (z + the rest).
        The weight `near` is 0 where the sampling point lies `spread` px or more from the face; that
        distance map is 1-Lipschitz (sqrt 2 once sampled bilinearly), so a point whose `before` is
        further than spread + sqrt(2) |R| is skipped, with |R| bounded by twice the largest knot value
        plus a pixel. The bound is checked on what the spline gives (the face, where it peaks); should
        it be exceeded, every point is evaluated. About half the live nodes of a talking head are
        skipped, with identical maps (`support_only=False` evaluates all).
        """
        if self.options.support_only:
            bound = 2.0 * fr.peak + 1.0
            distance = sample_bilinear(self._face_distance, before)[:, 0]
            chosen = np.flatnonzero(distance < fr.spread + np.sqrt(2.0) * bound)
            spline = _tps_eval((z[chosen] - fr.origin) / fr.unit, fr)
            if len(chosen) == len(z) or np.abs(spline).max(initial=0.0) <= bound:
                return chosen, spline
        return slice(None), _tps_eval((z - fr.origin) / fr.unit, fr)

    # ------------------------------------------------------------------ support
    def _below(self, channel: int, threshold: float) -> tuple[float, float, float, float]:
        """Bounding box (x0, y0, x1, y1) in portrait pixels, grown by one pixel for bilinear sampling, of
        the points where distance map `channel` can sample below `threshold`; +-inf on sides that touch
        the image edge (sampling replicates the edge beyond it); empty (x0 > x1) when there are none."""
        key = (channel, threshold)
        if key in self._below_boxes:  # the falloff is the same from frame to frame unless the head moves far
            return self._below_boxes[key]
        if len(self._below_boxes) >= 64:
            self._below_boxes.clear()
        self._below_boxes[key] = box = self._below_uncached(channel, threshold)
        return box

    def _below_uncached(self, channel: int, threshold: float) -> tuple[float, float, float, float]:
        rows = np.flatnonzero(self._row_min[:, channel] < threshold)
        cols = np.flatnonzero(self._col_min[:, channel] < threshold)
        if rows.size == 0 or cols.size == 0:
            return (np.inf, np.inf, -np.inf, -np.inf)
        x0, x1, y0, y1 = cols[0] - 1.0, cols[-1] + 1.0, rows[0] - 1.0, rows[-1] + 1.0
        return (-np.inf if cols[0] == 0 else x0, -np.inf if rows[0] == 0 else y0,
                np.inf if cols[-1] == self.width - 1 else x1, np.inf if rows[-1] == self.height - 1 else y1)

    def _support(self, fr: _Frame) -> tuple[int, int, int, int]:
        """Coarse-node box (i0, i1, j0, j1), end exclusive, outside which the smooth field is exactly 0.

        Outside it the head weight m is 0 (both distances are past their falloff where S^-1 z samples
        them) and so is the spline's window (S^-1 z is beyond 1.3 ring radii): B(z) = z. Two zero nodes
        of margin keep the bilinear upsampling of the box equal to that of the whole grid.
        """
        ny, nx = self._coarse_shape
        if self.drags is not None or not self.options.support_only:
            return 0, ny, 0, nx
        boxes = [self._below(0, fr.falloff), self._below(1, self.options.falloff_outside * fr.falloff)]
        reach = 1.3 * fr.ring * self._ellipse_extent  # [2] x, y half extents
        boxes.append((*(self.center - reach), *(self.center + reach)))
        boxes = [b for b in boxes if b[0] <= b[2] and b[1] <= b[3]]
        big = 4.0 * max(self.height, self.width)
        x0, y0 = (max(min(b[k] for b in boxes), -big) for k in (0, 1))
        x1, y1 = (min(max(b[k] for b in boxes), big) for k in (2, 3))
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ (fr.scale * fr.rot).T + fr.shift  # S(back)
        lo, hi = corners.min(0), corners.max(0)
        cs, off = self.stride, (self.stride - 1) / 2.0
        j0, i0 = (int(np.floor((v - off) / cs)) - 2 for v in lo)
        j1, i1 = (int(np.ceil((v - off) / cs)) + 3 for v in hi)
        i0, i1, j0, j1 = max(i0, 0), min(i1, ny), max(j0, 0), min(j1, nx)
        return (i0, i1, j0, j1) if i0 < i1 and j0 < j1 else (0, 1, 0, 1)

    # ------------------------------------------------------------------ per frame
    def _solve_frame(self, points: np.ndarray, drag_index: int | None
                     ) -> tuple[_Frame, np.ndarray, tuple[int, int, int, int]]:
        """Fit one frame under the fold guard; returns it, its smooth field on the coarse nodes of its
        support box `[i1 - i0, j1 - j0, 2]`, and that box (i0, i1, j0, j1)."""
        opt = self.options
        tries = [(opt.smoothing * f, 1.0) for f in (1, 10, 100)]
        tries += [(opt.smoothing * 100, a) for a in (0.8, 0.6, 0.4, 0.2, 0.0)]
        fitted_with = None
        for smoothing, local in tries:
            if smoothing != fitted_with:
                fr, fitted_with = self._fit(points, drag_index, smoothing), smoothing
                box = self._support(fr)
                i0, i1, j0, j1 = box
                nodes = self._coarse_nodes[i0:i1, j0:j1]
                whole = (i1 - i0, j1 - j0) == self._coarse_shape
            fr.local = local
            coarse = self._field(nodes.reshape(-1, 2), fr).reshape(nodes.shape)
            det = _cell_min_det(coarse + nodes, self.stride)
            if not whole:
                det = min(det, 1.0)  # cells outside the box do not move: their determinant is 1
            if det >= opt.min_jacobian:
                break
            logger.debug("fold guard: smoothing %g, local %g fold", smoothing, local)
        else:
            logger.warning("fold guard: a frame still folds with its local motion off")
        return fr, coarse, box

    def _compose(self, fr: _Frame, coarse: np.ndarray, box: tuple[int, int, int, int]
                 ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """B(y) on the pixel box (x0, y0, x1, y1), end exclusive, outside which B(y) = y: float32
        `[y1 - y0, x1 - x0, 2]` absolute (x, y) positions."""
        cs = self.stride
        i0, i1, j0, j1 = box
        # nodes sit at block centres, so cv2's half-pixel resize is exactly bilinear between them; the
        # box's zero margin makes resizing the box equal to resizing the whole grid, cropped
        full = cv2.resize(coarse.astype(np.float32), ((j1 - j0) * cs, (i1 - i0) * cs), interpolation=cv2.INTER_LINEAR)
        x0, y0, x1, y1 = j0 * cs, i0 * cs, min(j1 * cs, self.width), min(i1 * cs, self.height)
        smooth = full[: y1 - y0, : x1 - x0]
        # L at full resolution: B(y) = L(y) + smooth(L(y)), read before `smooth` becomes the map
        patches = full_resolution_patches(fr.openings, self._base, smooth, self.height, self.width, origin=(x0, y0))
        if not patches:
            smooth += self._base[y0:y1, x0:x1]  # displacement -> absolute positions, in place
            return smooth, (x0, y0, x1, y1)
        ux0, uy0 = min([x0] + [p[0][0] for p in patches]), min([y0] + [p[0][1] for p in patches])
        ux1, uy1 = max([x1] + [p[0][2] for p in patches]), max([y1] + [p[0][3] for p in patches])
        local = self._base[uy0:uy1, ux0:ux1].copy()
        local[y0 - uy0:y1 - uy0, x0 - ux0:x1 - ux0] += smooth
        for (a0, b0, a1, b1), moved, values in patches:
            patch = local[b0 - uy0:b1 - uy0, a0 - ux0:a1 - ux0].reshape(-1, 2)  # a copy when not contiguous
            patch[moved] = values
            local[b0 - uy0:b1 - uy0, a0 - ux0:a1 - ux0] = patch.reshape(b1 - b0, a1 - a0, 2)
        return local, (ux0, uy0, ux1, uy1)

    def _full_map(self, local: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The whole-image map `[H, W, 2]` from a box map (identity outside the box)."""
        x0, y0, x1, y1 = box
        out = self._base.copy()
        out[y0:y1, x0:x1] = local
        return out

    # ------------------------------------------------------------------ public API
    def _frames(self, points, frame_index):
        pts = np.asarray(points, dtype=np.float64)
        single = pts.ndim == 2
        pts = pts[None] if single else pts
        if pts.ndim != 3 or pts.shape[1:] != (68, 2) or not np.isfinite(pts).all():
            raise ValueError(f"points must be finite [68, 2] or [T, 68, 2], got shape {np.shape(points)}")
        if self.drags is None:
            return single, pts, [None] * len(pts)
        if frame_index is None:
            raise ValueError("this AnalyticFlow has trajectories: pass frame_index")
        idx = np.atleast_1d(np.asarray(frame_index, dtype=int))
        if idx.shape != (len(pts),) or idx.min() < 0 or idx.max() >= self.drags.num_frames:
            raise ValueError(f"frame_index {frame_index!r} must give one index in [0, "
                             f"{self.drags.num_frames}) per frame of points ({len(pts)})")
        return single, pts, [int(i) for i in idx]

    def backward_map(self, points: np.ndarray, frame_index=None, fused: bool = False):
        """Sampling maps for `cv2.remap(portrait, map_x, map_y, cv2.INTER_LINEAR)`.

        points: float `[68, 2]` or `[T', 68, 2]` target landmarks (x, y pixels) of the frame(s).
        frame_index: int or `[T']` ints, the frames' indices in the clip (needed with trajectories).
        Returns float32 `(map_x, map_y)`, each `[H, W]` (or `[T', H, W]`): the portrait pixel each
        output pixel shows. `fused=True` returns one float32 `[H, W, 2]` (or `[T', H, W, 2]`) map
        instead, for `cv2.remap(portrait, map, None, cv2.INTER_LINEAR)` (saves the split).
        Stream long clips frame by frame: a frame's map is 8 bytes per pixel.
        """
        single, pts, idx = self._frames(points, frame_index)
        maps = [self._full_map(*self._compose(*self._solve_frame(pts[t], idx[t]))) for t in range(len(pts))]
        if fused:
            return maps[0] if single else np.stack(maps)
        map_x = np.stack([np.ascontiguousarray(m[..., 0]) for m in maps])
        map_y = np.stack([np.ascontiguousarray(m[..., 1]) for m in maps])
        return (map_x[0], map_y[0]) if single else (map_x, map_y)

    def backward_map_box(self, points: np.ndarray, frame_index: int | None = None
                         ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """One frame's map on the pixel box (x0, y0, x1, y1), end exclusive, outside which it is the
        identity: float32 `[y1 - y0, x1 - x0, 2]` (absolute x, y, as `backward_map(fused=True)` there).
        A renderer need only remap inside the box (the rest of the frame is the portrait itself)."""
        _, pts, idx = self._frames(points, frame_index)
        if len(pts) != 1:
            raise ValueError(f"backward_map_box takes one frame of points [68, 2], got {np.shape(points)}")
        return self._compose(*self._solve_frame(pts[0], idx[0]))

    def forward_flow(self, points: np.ndarray, frame_index=None, iterations: int = 8) -> "torch.Tensor":  # noqa: F821
        """Forward flow (frame 0 -> frame t), the flow contract, by inverting the backward map.

        points: float `[T', 68, 2]` (or `[68, 2]`) target landmarks. Returns float32 `[T', 2, H, W]`:
        where each portrait pixel goes (dx, dy pixels). Newton steps on a grid of half the coarse
        step, upsampled.
        """
        _, pts, idx = self._frames(points, frame_index)
        cs = max(self.stride // 2, 1)
        ny, nx = -(-self.height // cs), -(-self.width // cs)
        gy, gx = np.mgrid[0:ny, 0:nx] * float(cs) + (cs - 1) / 2.0
        target = np.stack([gx.ravel(), gy.ravel()], 1)  # portrait points whose image we look for
        flows = np.empty((len(pts), 2, self.height, self.width), np.float32)
        ex, ey = np.array([0.5, 0.0]), np.array([0.0, 0.5])
        for t in range(len(pts)):
            sample = self._full_map(*self._compose(*self._solve_frame(pts[t], idx[t])))  # B, [H, W, 2]
            y = target.copy()
            for _ in range(iterations):
                res = target - sample_bilinear(sample, y)
                jx = sample_bilinear(sample, y + ex) - sample_bilinear(sample, y - ex)  # dB/dx
                jy = sample_bilinear(sample, y + ey) - sample_bilinear(sample, y - ey)  # dB/dy
                det = jx[:, 0] * jy[:, 1] - jx[:, 1] * jy[:, 0]
                det = np.where(np.abs(det) < 1e-3, 1e-3, det)
                step = np.stack([jy[:, 1] * res[:, 0] - jy[:, 0] * res[:, 1],
                                 jx[:, 0] * res[:, 1] - jx[:, 1] * res[:, 0]], 1) / det[:, None]
                y = y + np.clip(step, -2.0 * cs, 2.0 * cs)
            disp = (y - target).reshape(ny, nx, 2).astype(np.float32)
            full = cv2.resize(disp, (nx * cs, ny * cs), interpolation=cv2.INTER_LINEAR)
            flows[t] = full[: self.height, : self.width].transpose(2, 0, 1)  # [H, W, 2] -> [2, H, W]
        import torch  # here, not at the top: the warp engine renders without loading torch (~1 s)

        return torch.from_numpy(flows)
