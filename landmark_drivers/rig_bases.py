"""The face rig's geometry: the source face's 3D frame and its blendshape displacement bases.

Everything here is expressed in the *face frame* of one portrait (see `FaceFrame`): origin at the
midpoint of the outer eye corners (iBUG 36, 45), unit length = their 3D distance `unit` (pixels), axes
= the head's own axes in image convention: x toward the subject's left (image right for a frontal
face), y down the face (toward the chin), z into the head (away from the camera). A basis is a float64
`[68, 3]` displacement of the 68 iBUG points in that frame at blendshape weight 1; `build_bases`
stacks all 52 into `[52, 68, 3]` (order `BLENDSHAPE_NAMES`). `rig.py` documents the whole model.

ARKit "Left"/"Right" name the subject's sides (checked: mediapipe's eyeBlinkRight fires for the eye
on the image left), so "...Left" shapes move points 22-26, 42-47, 54/64 and the x > 0 half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

from .blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, blendshape_index

# Rigid (expression-independent) points of mediapipe's canonical face model, in cm (x right, y up,
# z toward the viewer), read from `geometry_pipeline_metadata_landmarks.binarypb` inside
# `assets/face_landmarker.task`: forehead/nose midline, eye corners, temples, face sides, nose wings.
# Fitting them to the portrait's mesh gives the head's rotation without trusting expression points.
_CANONICAL_RIGID: dict[int, tuple[float, float, float]] = {
    10: (0.00, 8.26, 4.48), 151: (0.00, 6.55, 5.03), 9: (0.00, 4.89, 5.39), 168: (0.00, 3.27, 5.24),
    6: (0.00, 2.47, 5.79), 195: (0.00, 1.06, 6.77), 4: (0.00, -0.46, 7.59), 1: (0.00, -1.13, 7.48),
    2: (0.00, -2.09, 6.06), 33: (-4.45, 2.66, 3.17), 263: (4.45, 2.66, 3.17), 133: (-1.86, 2.59, 3.76),
    362: (1.86, 2.59, 3.76), 127: (-7.74, 2.36, -2.01), 356: (7.74, 2.36, -2.01),
    234: (-7.66, 0.67, -2.44), 454: (7.66, 0.67, -2.44), 98: (-1.41, -1.71, 5.24), 327: (1.41, -1.71, 5.24),
}
_EAR_MESH_POINTS = (234, 454)  # mesh points at the sides of the face, just in front of the ears

# Anatomy in face units (1 = outer-eye-corner distance, about 9 cm on an adult).
PIVOT_BELOW_EYES = 0.6  # head pivot (atlanto-occipital joint) below the eye line
PIVOT_BEHIND_EARS = 0.25  # ... and this far behind the depth of the face sides at the ears
HINGE_BELOW_EYES = 0.3  # jaw hinge (temporomandibular joint) below the eye line
HINGE_BEHIND_EARS = 0.1  # ... and this far behind the face sides
# The condyle also glides forward-down along the articular eminence as the jaw opens; without it a
# hinge at the ear swings the chin back more than down. Full-opening glide, face units (y down, z in):
JAW_GLIDE = (0.0, 0.075, -0.13)
JAW_OPEN_DROP = 0.38  # jawOpen=1 lowers the inner lower lip (66) by this much along the face's y
JAW_ANGLE_RANGE = (np.radians(5.0), np.radians(35.0))  # plausible hinge rotation for jawOpen=1
LOWER_LID_SHARE = 0.15  # in a blink the lids meet 15 % of the way up from the lower lid
PUCKER_NARROWING = 0.45  # mouthPucker=1 narrows the mouth to 55 % of the portrait's width
FUNNEL_NARROWING = 0.25

# iBUG 68 left-right mirror (subject's right <-> left); midline points map to themselves.
MIRROR_68 = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
     27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
     64, 63, 62, 61, 60, 67, 66, 65])

# (upper, lower) point pairs that may close but never cross: inner lips, then eyelids.
LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
LID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))
# An outer-lip point follows its inner-lip point (the lip moves as a body) with this factor.
LIP_FOLLOW = {61: (50, 0.6), 62: (51, 0.6), 63: (52, 0.6), 67: (58, 0.6), 66: (57, 0.6), 65: (56, 0.6)}

# How much of the jaw's rigid motion each point takes: chin/lower lip ride on the mandible, the mouth
# corners go half way, the contour fades toward the hinge, the upper face does not move.
_JAW_WEIGHT = {2: 0.15, 3: 0.45, 4: 0.75, 5: 0.95, 6: 1.0, 7: 1.0, 8: 1.0, 9: 1.0, 10: 1.0, 11: 0.95,
               12: 0.75, 13: 0.45, 14: 0.15, 48: 0.45, 54: 0.45, 60: 0.45, 64: 0.45, 49: 0.05, 53: 0.05,
               55: 0.8, 56: 1.0, 57: 1.0, 58: 1.0, 59: 0.8, 65: 0.9, 66: 1.0, 67: 0.9}
# A displacement of the subject's left mouth corner spreads over the lips with these factors.
_LEFT_CORNER_SPREAD = {54: 1.0, 64: 1.0, 53: 0.7, 55: 0.7, 52: 0.35, 56: 0.35, 51: 0.1, 57: 0.1,
                       63: 0.6, 65: 0.6, 62: 0.1, 66: 0.1}
_LIP_POINTS = tuple(range(48, 68))

Disp = tuple[float, float, float]


@dataclass(frozen=True)
class FaceFrame:
    """The source face's 3D frame (module docstring) and its points in it.

    origin: float64 [3], image-convention 3D pixels (x column, y row, z mesh depth).
    axes: float64 [3, 3]; columns = the face's x, y, z axes in image convention (a rotation).
    unit: pixels per face unit (3D outer-eye-corner distance).
    points: float64 [68, 3]; the source's 68 points in face units.
    image_points: float64 [68, 3]; the same in image pixels (x, y = `landmarks68`, z = mesh depth).
    pivot: float64 [3]; head rotation centre in face units.
    hinge: float64 [3]; jaw hinge in face units (its axis is the face's x axis).
    """

    origin: np.ndarray
    axes: np.ndarray
    unit: float
    points: np.ndarray
    image_points: np.ndarray
    pivot: np.ndarray
    hinge: np.ndarray

    def to_image(self, face_points: np.ndarray) -> np.ndarray:
        """Face-unit points [..., 3] -> image-convention pixel points [..., 3]."""
        return self.origin + self.unit * face_points @ self.axes.T


def fit_head_axes(mesh: np.ndarray) -> np.ndarray:
    """Rotation [3, 3] (columns = face x, y, z in image convention) fitted to the rigid mesh points.

    mesh: [478 or 468, 3] pixels (x, y, z depth). Least-squares (Kabsch) over `_CANONICAL_RIGID`.
    """
    idx = np.array(list(_CANONICAL_RIGID))
    canon = np.array(list(_CANONICAL_RIGID.values())) * np.array([1.0, -1.0, -1.0])  # to y down, z in
    a = canon - canon.mean(axis=0)
    b = mesh[idx].astype(np.float64) - mesh[idx].astype(np.float64).mean(axis=0)
    u, _, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def landmark_depths(mesh: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mesh depth [N] at image points [N, 2]: linear over the mesh's 2D triangulation, nearest outside."""
    xy, z = mesh[:, :2].astype(np.float64), mesh[:, 2].astype(np.float64)
    depth = LinearNDInterpolator(xy, z)(points)
    outside = ~np.isfinite(depth)
    if outside.any():
        depth[outside] = NearestNDInterpolator(xy, z)(points[outside])
    return depth


def face_frame(mesh: np.ndarray, landmarks68: np.ndarray) -> FaceFrame:
    """Build the `FaceFrame` of a face from its mesh [N, 3] and 68 points [68, 2] (pixels)."""
    axes = fit_head_axes(mesh)
    image_points = np.concatenate([landmarks68.astype(np.float64),
                                   landmark_depths(mesh, landmarks68.astype(np.float64))[:, None]], axis=1)
    origin = 0.5 * (image_points[36] + image_points[45])
    unit = float(np.linalg.norm(image_points[45] - image_points[36]))
    if not unit > 1e-3:
        raise ValueError(f"degenerate face: outer eye corners 36 and 45 are {unit} px apart")
    points = (image_points - origin) @ axes / unit
    ears = (mesh[list(_EAR_MESH_POINTS)].astype(np.float64) - origin) @ axes / unit
    ear_depth = float(ears[:, 2].mean())
    pivot = np.array([0.0, PIVOT_BELOW_EYES, ear_depth + PIVOT_BEHIND_EARS])
    hinge = np.array([0.0, HINGE_BELOW_EYES, ear_depth + HINGE_BEHIND_EARS])
    return FaceFrame(origin=origin, axes=axes, unit=unit, points=points, image_points=image_points,
                     pivot=pivot, hinge=hinge)


# ---- templates: subject-left (x > 0) shapes in face units; the right ones are their mirror ----------

def _put(basis: np.ndarray, table: dict[int, Disp]) -> np.ndarray:
    for i, d in table.items():
        basis[i] += d
    return basis


def _spread(d: Disp, factors: dict[int, float]) -> dict[int, Disp]:
    return {i: (d[0] * f, d[1] * f, d[2] * f) for i, f in factors.items()}


def _mirror(basis: np.ndarray) -> np.ndarray:
    """The subject-right twin of a subject-left basis [68, 3]."""
    return basis[MIRROR_68] * np.array([-1.0, 1.0, 1.0])


_LEFT_TEMPLATES: dict[str, dict[int, Disp]] = {
    "browDown": {22: (-0.03, 0.07, 0.0), 23: (-0.02, 0.06, 0.0), 24: (-0.01, 0.045, 0.0),
                 25: (0.0, 0.03, 0.0), 26: (0.0, 0.02, 0.0)},
    "browOuterUp": {26: (0.005, -0.10, 0.0), 25: (0.0, -0.085, 0.0), 24: (0.0, -0.06, 0.0),
                    23: (0.0, -0.035, 0.0), 22: (0.0, -0.015, 0.0)},
    "cheekSquint": {46: (0.0, -0.02, 0.0), 47: (0.0, -0.02, 0.0)},
    "eyeSquint": {46: (0.0, -0.03, 0.0), 47: (0.0, -0.03, 0.0), 43: (0.0, 0.008, 0.0), 44: (0.0, 0.008, 0.0)},
    "eyeWide": {43: (0.0, -0.035, 0.0), 44: (0.0, -0.035, 0.0), 46: (0.0, 0.008, 0.0), 47: (0.0, 0.008, 0.0)},
    # The lids follow vertical gaze; horizontal gaze moves no iBUG point.
    "eyeLookDown": {43: (0.0, 0.025, 0.0), 44: (0.0, 0.025, 0.0), 46: (0.0, 0.01, 0.0), 47: (0.0, 0.01, 0.0)},
    "eyeLookUp": {43: (0.0, -0.02, 0.0), 44: (0.0, -0.02, 0.0), 46: (0.0, -0.008, 0.0), 47: (0.0, -0.008, 0.0)},
    "mouthSmile": _spread((0.09, -0.07, 0.04), _LEFT_CORNER_SPREAD),  # zygomaticus: out, up, back
    "mouthStretch": _spread((0.08, 0.03, 0.01), _LEFT_CORNER_SPREAD),  # risorius: out, a little down
    "mouthDimple": _spread((0.03, 0.0, 0.04), _LEFT_CORNER_SPREAD),  # buccinator: corner pulled back
    "mouthFrown": _spread((0.01, 0.06, 0.0), {54: 1.0, 64: 1.0, 53: 0.5, 55: 0.6, 52: 0.2, 56: 0.3,
                                               63: 0.4, 65: 0.5}),
    "mouthLowerDown": _spread((0.0, 0.08, -0.01), {56: 1.0, 55: 0.7, 57: 0.5, 65: 1.0, 66: 0.5}),
    "mouthUpperUp": _spread((0.0, -0.07, -0.01), {52: 1.0, 53: 0.6, 51: 0.5, 63: 1.0, 62: 0.5}),
    "mouthPress": {**_spread((0.0, 0.015, 0.0), {63: 1.0, 62: 0.5}),
                   **_spread((0.0, -0.015, 0.0), {65: 1.0, 66: 0.5}),
                   **_spread((0.0, 0.02, 0.0), {52: 1.0, 53: 0.5, 51: 0.5}),
                   **_spread((0.0, -0.02, 0.0), {56: 1.0, 55: 0.5, 57: 0.5})},
    "noseSneer": {35: (0.0, -0.03, 0.0), 34: (0.0, -0.02, 0.0), 52: (0.0, -0.01, 0.0), 53: (0.0, -0.01, 0.0)},
}
_SYMMETRIC_TEMPLATES: dict[str, dict[int, Disp]] = {
    "browInnerUp": {21: (0.01, -0.10, 0.0), 22: (-0.01, -0.10, 0.0), 20: (0.0, -0.075, 0.0),
                    23: (0.0, -0.075, 0.0), 19: (0.0, -0.045, 0.0), 24: (0.0, -0.045, 0.0),
                    18: (0.0, -0.02, 0.0), 25: (0.0, -0.02, 0.0)},
    "mouthRollLower": {**_spread((0.0, -0.05, 0.03), {56: 1.0, 57: 1.0, 58: 1.0, 55: 0.5, 59: 0.5}),
                       **_spread((0.0, -0.01, 0.02), {65: 1.0, 66: 1.0, 67: 1.0})},
    "mouthRollUpper": {**_spread((0.0, 0.04, 0.03), {50: 1.0, 51: 1.0, 52: 1.0, 49: 0.5, 53: 0.5}),
                       **_spread((0.0, 0.01, 0.02), {61: 1.0, 62: 1.0, 63: 1.0})},
    "mouthShrugLower": {**_spread((0.0, -0.04, -0.01), {i: 1.0 for i in (55, 56, 57, 58, 59, 65, 66, 67)}),
                        **_spread((0.0, -0.015, -0.02), {7: 1.0, 8: 1.0, 9: 1.0})},
    "mouthShrugUpper": _spread((0.0, -0.03, -0.01), {i: 1.0 for i in (49, 50, 51, 52, 53, 61, 62, 63)}),
    "cheekPuff": {**_spread((0.06, 0.0, 0.0), {11: 0.35, 12: 0.6, 13: 1.0, 14: 0.8, 15: 0.35}),
                  **_spread((-0.06, 0.0, 0.0), {5: 0.35, 4: 0.6, 3: 1.0, 2: 0.8, 1: 0.35})},
}


# ---- bases computed from the portrait's own geometry ------------------------------------------------

def _jaw_weights() -> np.ndarray:
    w = np.zeros(68)
    w[list(_JAW_WEIGHT)] = list(_JAW_WEIGHT.values())
    return w


def jaw_open_basis(frame: FaceFrame) -> np.ndarray:
    """jawOpen: the mandible turns about the hinge (face x axis through `frame.hinge`) and glides
    by `JAW_GLIDE`.

    The full angle is the one that, with the glide, lowers the inner lower lip (66) by `JAW_OPEN_DROP`
    along the face's y, clipped to `JAW_ANGLE_RANGE`; point i takes weight_i of the angle and of the
    glide (soft tissue lags the bone). The mouth corners also draw in a little as the mouth rounds.
    """
    rel = frame.points - frame.hinge  # [68, 3] relative to the hinge
    y, z = rel[66, 1], rel[66, 2]
    # y cos(t) - z sin(t) = y + drop  <=>  r cos(t - alpha) = y + drop with alpha = atan2(-z, y)
    r, alpha = float(np.hypot(y, z)), float(np.arctan2(-z, y))
    cos_arg = (y + JAW_OPEN_DROP - JAW_GLIDE[1]) / r if r > 0 else 2.0
    angle = alpha - np.arccos(cos_arg) if abs(cos_arg) <= 1.0 else JAW_ANGLE_RANGE[1]
    angle = float(np.clip(angle, *JAW_ANGLE_RANGE))
    weight = _jaw_weights()
    c, s = np.cos(weight * angle), np.sin(weight * angle)  # [68]
    basis = weight[:, None] * np.array(JAW_GLIDE)
    basis[:, 1] += rel[:, 1] * c - rel[:, 2] * s - rel[:, 1]
    basis[:, 2] += rel[:, 1] * s + rel[:, 2] * c - rel[:, 2]
    centre_x = 0.5 * (frame.points[48, 0] + frame.points[54, 0])
    for i, f in {48: 1.0, 54: 1.0, 60: 1.0, 64: 1.0, 49: 0.5, 53: 0.5, 55: 0.5, 59: 0.5}.items():
        basis[i, 0] -= 0.03 * f * np.sign(frame.points[i, 0] - centre_x)
    return basis


def lip_gaps(points: np.ndarray) -> np.ndarray:
    """Inner-lip opening per `LIP_PAIRS` along the face's y: points [..., 68, 3] -> [..., 3] (> 0 open)."""
    upper, lower = np.array(LIP_PAIRS).T
    return points[..., lower, 1] - points[..., upper, 1]


def mouth_close_basis(frame: FaceFrame, jaw_open: np.ndarray) -> np.ndarray:
    """mouthClose: the lips close by jawOpen's lip separation plus the portrait's own lip gap.

    So jawOpen=w with mouthClose=w keeps the lips together (ARKit's use), and mouthClose alone closes
    a parted mouth. The upper lip takes 40 % of the travel, the lower lip 60 %; the outer lips follow
    (`LIP_FOLLOW`). Overshoot on an already closed mouth is removed by the rig's no-crossing clamp.
    """
    travel = lip_gaps(jaw_open) + np.maximum(lip_gaps(frame.points), 0.0)  # [3]
    basis = np.zeros((68, 3))
    for (upper, lower), amount in zip(LIP_PAIRS, travel, strict=True):
        for i, dy in ((upper, 0.4 * amount), (lower, -0.6 * amount)):
            basis[i, 1] += dy
            outer, f = LIP_FOLLOW[i]
            basis[outer, 1] += f * dy
    return basis


def blink_basis(frame: FaceFrame, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """eyeBlink: each upper-lid point meets its lower-lid partner of *this* face exactly at weight 1."""
    basis = np.zeros((68, 3))
    for upper, lower in pairs:
        meet = frame.points[lower] + LOWER_LID_SHARE * (frame.points[upper] - frame.points[lower])
        basis[upper] = meet - frame.points[upper]
        basis[lower] = meet - frame.points[lower]
    return basis


def narrowing_basis(frame: FaceFrame, fraction: float, protrude: float, open_upper: float,
                    open_lower: float) -> np.ndarray:
    """mouthPucker / mouthFunnel: lips squeeze toward the mouth centre (x scaled by 1 - fraction),
    push forward (-z) by `protrude`, and the inner lips part by `open_upper` up / `open_lower` down."""
    basis = np.zeros((68, 3))
    lips = list(_LIP_POINTS)
    centre_x = 0.5 * (frame.points[48, 0] + frame.points[54, 0])
    basis[lips, 0] = -fraction * (frame.points[lips, 0] - centre_x)
    basis[lips, 2] = -protrude
    basis[[48, 54, 60, 64], 2] = -0.5 * protrude
    basis[[61, 63], 1], basis[62, 1] = -0.7 * open_upper, -open_upper
    basis[[65, 67], 1], basis[66, 1] = 0.7 * open_lower, open_lower
    basis[[50, 51, 52], 1] -= 0.5 * open_upper
    basis[[56, 57, 58], 1] += 0.5 * open_lower
    return basis


def build_bases(frame: FaceFrame) -> np.ndarray:
    """All 52 displacement bases of one face, float64 [52, 68, 3] in face units (order BLENDSHAPE_NAMES).

    Channels with no effect on the 68 points (_neutral, horizontal gaze) are zero.
    """
    bases = np.zeros((NUM_BLENDSHAPES, 68, 3))

    def put(name: str, basis: np.ndarray) -> None:
        bases[blendshape_index(name)] = basis

    for stem, table in _LEFT_TEMPLATES.items():
        left = _put(np.zeros((68, 3)), table)
        put(stem + "Left", left)
        put(stem + "Right", _mirror(left))
    for name, table in _SYMMETRIC_TEMPLATES.items():
        put(name, _put(np.zeros((68, 3)), table))

    jaw_weight = _jaw_weights()[:, None]
    jaw_open = jaw_open_basis(frame)
    put("jawOpen", jaw_open)
    put("jawForward", jaw_weight * np.array([0.0, 0.0, -0.07]))
    put("jawLeft", jaw_weight * np.array([0.08, 0.0, 0.0]))
    put("jawRight", jaw_weight * np.array([-0.08, 0.0, 0.0]))
    put("mouthClose", mouth_close_basis(frame, jaw_open))
    put("eyeBlinkLeft", blink_basis(frame, LID_PAIRS[2:]))
    put("eyeBlinkRight", blink_basis(frame, LID_PAIRS[:2]))
    put("mouthPucker", narrowing_basis(frame, PUCKER_NARROWING, protrude=0.08, open_upper=0.0, open_lower=0.0)
        + _put(np.zeros((68, 3)), {50: (0, -0.015, 0), 51: (0, -0.015, 0), 52: (0, -0.015, 0),
                                   56: (0, 0.015, 0), 57: (0, 0.015, 0), 58: (0, 0.015, 0)}))
    put("mouthFunnel", narrowing_basis(frame, FUNNEL_NARROWING, protrude=0.06, open_upper=0.04, open_lower=0.05))
    shift = np.zeros((68, 3))
    shift[list(_LIP_POINTS), 0] = 0.09
    put("mouthLeft", shift)
    put("mouthRight", -shift)
    return bases


def basis_names_with_effect(bases: np.ndarray) -> tuple[str, ...]:
    """Names of the channels whose basis [52, 68, 3] moves at least one point."""
    moving = np.abs(bases).reshape(NUM_BLENDSHAPES, -1).max(axis=1) > 0
    return tuple(name for name, m in zip(BLENDSHAPE_NAMES, moving, strict=True) if m)
