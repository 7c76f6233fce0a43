"""Retargeting a driving face onto the portrait: absolute per-frame measurements -> relative motion.

A driving frame is measured (`measure_head`) as:

- **head axes**: the least-squares rigid fit of mediapipe's canonical face to the frame's mesh, the
  same fit the rig uses for the portrait (`rig_bases.fit_head_axes`; columns = the head's x, y, z in
  image convention: x right, y down, z into the image);
- **pivot**: the head's rotation centre in image pixels, placed as the rig places it (`PIVOT_BELOW_EYES`
  below the eye line, `PIVOT_BEHIND_EARS` behind the face sides). Measuring translation there means a
  head that only turns about its neck reports no translation, so the rig's rotation is not doubled;
- **unit**: the 3D outer-eye-corner distance (pixels), and **scale**: the RMS 3D spread of rigid points
  (forehead/nose midline, eye corners, temples, face sides), which tracks camera distance without
  being fooled by foreshortening when the head turns.

Relative to a reference frame (`relative_rotation`, `relative_translation`):

- rotation R = A_ref^T A_t in the reference head's axes, decomposed as R = Rz(roll) Rx(-pitch) Ry(yaw),
  exactly the rig's composition, so (yaw, pitch, roll) follow `FaceMotion`'s signs: yaw > 0 turns the
  face toward image-left, pitch > 0 lifts the chin, roll > 0 turns it clockwise on screen;
- translation x, y = pivot shift in image axes over the reference's unit; z = scale / scale_ref - 1.

Expressions are relative too (`reference_index`, `relative_blendshapes`): weights(t) - weights(ref).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES
from .rig_bases import PIVOT_BEHIND_EARS, PIVOT_BELOW_EYES, fit_head_axes

ReferenceMode = Literal["first", "neutral"]

# Mesh points that do not move with expression (the rig's canonical-fit set) and the eye corners / face sides.
_RIGID_MESH_POINTS = (10, 151, 9, 168, 6, 195, 4, 1, 2, 33, 263, 133, 362, 127, 356, 234, 454, 98, 327)
_EYE_CORNERS = (33, 263)  # outer eye corners (iBUG 36, 45)
_FACE_SIDES = (234, 454)
# Channels that count toward "how expressive is this frame" when picking the neutral reference: all but
# `_neutral` and gaze (looking sideways is not an expression).
NEUTRAL_SCORE_CHANNELS = tuple(i for i, n in enumerate(BLENDSHAPE_NAMES)
                               if n != "_neutral" and not n.startswith("eyeLook"))
_NEUTRAL_CHANNEL = BLENDSHAPE_NAMES.index("_neutral")


@dataclass(frozen=True)
class HeadMeasurement:
    """One driving frame's head, absolute (see the module docstring).

    axes: float64 [3, 3], columns = head x, y, z in image convention. pivot: float64 [3] image pixels
    (x, y, depth). unit: 3D outer-eye-corner distance in pixels. scale: RMS 3D spread of the rigid points.
    """

    axes: np.ndarray
    pivot: np.ndarray
    unit: float
    scale: float


def measure_head(mesh: np.ndarray) -> HeadMeasurement:
    """Measure the head of one frame from its mediapipe mesh [478 or 468, 3] (pixels, z = depth)."""
    mesh = np.asarray(mesh, dtype=np.float64)
    if mesh.ndim != 2 or mesh.shape[1] != 3 or mesh.shape[0] < 468:
        raise ValueError(f"mesh must be [478, 3] (or [468, 3]), got {mesh.shape}")
    axes = fit_head_axes(mesh)
    left, right = mesh[_EYE_CORNERS[0]], mesh[_EYE_CORNERS[1]]
    origin = 0.5 * (left + right)
    unit = float(np.linalg.norm(right - left))
    if not unit > 1e-6:
        raise ValueError(f"degenerate mesh: outer eye corners are {unit} px apart")
    ear_depth = float(((mesh[list(_FACE_SIDES)] - origin) @ axes / unit)[:, 2].mean())
    pivot = origin + unit * axes @ np.array([0.0, PIVOT_BELOW_EYES, ear_depth + PIVOT_BEHIND_EARS])
    rigid = mesh[list(_RIGID_MESH_POINTS)]
    scale = float(np.sqrt(((rigid - rigid.mean(axis=0)) ** 2).sum(axis=1).mean()))
    return HeadMeasurement(axes=axes, pivot=pivot, unit=unit, scale=scale)


def rotation_to_angles(rotation: np.ndarray) -> np.ndarray:
    """Head-frame rotations [..., 3, 3] -> (yaw, pitch, roll) degrees [..., 3], inverting
    R = Rz(roll) Rx(-pitch) Ry(yaw) (the rig's composition; valid for |pitch| < 90)."""
    r = np.asarray(rotation, dtype=np.float64)
    # Row 2 of Rz(c) Rx(a) Ry(b) is (-cos a sin b, sin a, cos a cos b); column 1 is (-sin c cos a, cos c cos a, .).
    a = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    yaw = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    roll = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    return np.degrees(np.stack([yaw, -a, roll], axis=-1))


def angles_to_rotation(angles: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees [..., 3] -> R = Rz(roll) Rx(-pitch) Ry(yaw) [..., 3, 3] in head axes."""
    yaw, pitch, roll = np.moveaxis(np.radians(np.asarray(angles, dtype=np.float64)), -1, 0)
    cy, sy, ca, sa, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(-pitch), np.sin(-pitch), np.cos(roll), np.sin(roll)
    zero, one = np.zeros_like(yaw), np.ones_like(yaw)

    def mat(rows: list[list[np.ndarray]]) -> np.ndarray:
        return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)  # [..., 3, 3]

    r_yaw = mat([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    r_pitch = mat([[one, zero, zero], [zero, ca, -sa], [zero, sa, ca]])
    r_roll = mat([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
    return r_roll @ r_pitch @ r_yaw


def relative_rotation(axes: np.ndarray, reference_axes: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees [N, 3] of head axes [N, 3, 3] relative to `reference_axes` [3, 3]."""
    rel = np.einsum("ji,njk->nik", np.asarray(reference_axes, np.float64), np.asarray(axes, np.float64))
    return rotation_to_angles(rel)  # R_t = A_ref^T A_t


def relative_translation(pivots: np.ndarray, scales: np.ndarray, reference_pivot: np.ndarray,
                         reference_unit: float, reference_scale: float) -> np.ndarray:
    """Head translation [N, 3]: pivot (x, y) shift over the reference unit, z = scale / reference - 1.

    pivots: [N, 3] (or [N, 2]) image pixels; scales: [N].
    """
    pivots = np.asarray(pivots, dtype=np.float64)
    xy = (pivots[:, :2] - np.asarray(reference_pivot, np.float64)[:2]) / reference_unit
    z = np.asarray(scales, dtype=np.float64) / reference_scale - 1.0
    return np.concatenate([xy, z[:, None]], axis=1)


def neutral_score(blendshapes: np.ndarray) -> np.ndarray:
    """How expressive each frame is: sum of `NEUTRAL_SCORE_CHANNELS` weights, [N, 52] -> [N]."""
    return np.asarray(blendshapes, dtype=np.float64)[:, list(NEUTRAL_SCORE_CHANNELS)].sum(axis=1)


def reference_index(blendshapes: np.ndarray, found: np.ndarray, mode: ReferenceMode) -> int:
    """Index of the reference sample among `found` ones: the first (`"first"`) or the one with the lowest
    `neutral_score` (`"neutral"`; ties go to the earliest). blendshapes: [N, 52]; found: bool [N]."""
    found = np.asarray(found, dtype=bool)
    candidates = np.flatnonzero(found)
    if candidates.size == 0:
        raise ValueError("no sample with a face to take as the reference")
    if mode == "first":
        return int(candidates[0])
    if mode == "neutral":
        return int(candidates[np.argmin(neutral_score(np.asarray(blendshapes)[candidates]))])
    raise ValueError(f"relative_to must be 'first' or 'neutral', got {mode!r}")


def relative_blendshapes(blendshapes: np.ndarray, reference: np.ndarray, expressiveness: float = 1.0,
                         source_blendshapes: np.ndarray | None = None) -> np.ndarray:
    """Expression deltas [N, 52]: (weights - reference) * expressiveness, clipped to [-1, 1].

    blendshapes: [N, 52] ARKit weights in [0, 1]; reference: [52]. Negative deltas undo what the
    reference frame shows (a mouth open in the reference closes). With `source_blendshapes` [52] (the
    portrait's own weights) negative deltas are further limited to -source, so the portrait's weight plus
    the delta stays >= 0: a driver that closes its mouth cannot push a closed portrait mouth "more closed
    than closed" (the rig would lift the chin). Positive deltas are not limited by the portrait (the rig's
    weight 1 means "fully", e.g. lids closed, from whatever the portrait shows). `_neutral` is always 0.
    """
    bs = np.asarray(blendshapes, dtype=np.float64)
    if bs.ndim != 2 or bs.shape[1] != NUM_BLENDSHAPES:
        raise ValueError(f"blendshapes must be [N, {NUM_BLENDSHAPES}], got {bs.shape}")
    delta = np.clip((bs - np.asarray(reference, np.float64)) * expressiveness, -1.0, 1.0)
    if source_blendshapes is not None:
        own = np.clip(np.asarray(source_blendshapes, dtype=np.float64), 0.0, 1.0)
        if own.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"source_blendshapes must be [{NUM_BLENDSHAPES}], got {own.shape}")
        delta = np.maximum(delta, -own)
    delta[:, _NEUTRAL_CHANNEL] = 0.0
    return delta
