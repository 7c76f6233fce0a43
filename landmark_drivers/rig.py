"""The face rig: `FaceMotion` x `SourceFace` -> `LandmarkTrack` (68 iBUG points per frame, source pixels).

Model, per frame t (all frames at once, no per-frame Python loop):

1. **Face frame.** The portrait's head axes come from a least-squares rigid fit of mediapipe's canonical
   face (forehead/nose midline, eye corners, temples, face sides) to the portrait's mesh, in image
   convention (x right, y down, z = mesh depth, away from the camera). Origin: midpoint of the outer eye
   corners (36, 45); unit: their 3D distance. The 68 points get their depth from the mesh (linear
   interpolation over its 2D triangulation). A rolled, turned or scaled portrait therefore rigs the
   same way as a frontal one. The rotation is fitted to the mesh rather than read from
   `SourceFace.pose`, because the pose matrix comes from mediapipe's perspective model (assumed 63 deg
   field of view) and disagrees with the mesh's own orthographic depth for off-centre faces (example
   portrait: 14.9 deg pitch from the pose, 6-10 deg from the mesh).
2. **Expression.** Displacement = sum_k w_k(t) * basis_k, in face units, in the face frame (`rig_bases`).
   Bases are linear in the weight and added to the portrait as photographed (weights 0 = portrait).
   Fixed templates (smile, brows, stretch, press, ...) are sized in face units; geometric ones are
   computed from *this* face: eyeBlink moves each upper-lid point onto its lower-lid partner (they meet
   15 % up from the lower lid, exactly at weight 1, whatever the portrait's eye openness); jawOpen rotates
   the chin, lower lip and (fading) contour about the jaw hinge by the angle that drops the inner lower
   lip by 0.38 face units; mouthClose closes jawOpen's lip separation plus the portrait's own lip gap;
   mouthPucker/Funnel scale the mouth's width toward its centre. Afterwards each inner-lip and eyelid
   pair (upper, lower) is kept from crossing: its gap along the face's y may close but not go below
   min(portrait's gap, 0); the fix is split evenly and carried to the outer lip.
3. **Head rotation.** (yaw, pitch, roll) degrees are applied in the portrait's own head axes (its pose
   is the zero), about a pivot 0.6 units below the eye line and 0.25 units behind the depth of the face
   sides at the ears (~ the atlanto-occipital joint): R = Rz(roll) Rx(-pitch) Ry(yaw) in face axes, so
   yaw > 0 turns the face toward image-left, pitch > 0 lifts the chin (nose tip moves up), roll > 0
   turns the face clockwise on screen (`FaceMotion`).
4. **Projection.** Weak perspective: the rotated 3D points are dropped onto the image plane at the
   portrait's scale (mediapipe's mesh lives in the same image-aligned space); the change of perspective
   foreshortening under head rotation (a few % at portrait distances) is neglected.
5. **Translation.** z scales the frame about the (rotated) centroid of the portrait's 68 points by
   1 + z; x, y shift by that many `SourceFace.interocular` in image axes (x right, y down).

Frame 0 of a track is forced to the portrait itself (`points[0] == reference == landmarks68`), because
MOFA-Video conditions on the first frame being the source image; motion given for frame 0 is ignored.
"""

from __future__ import annotations

import logging

import numpy as np

from .blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, blendshape_index
from .motion import FaceMotion, LandmarkTrack
from .rig_bases import LID_PAIRS, LIP_FOLLOW, LIP_PAIRS, FaceFrame, build_bases, face_frame
from .source_face import SourceFace

logger = logging.getLogger(__name__)

WEIGHT_RANGE = (-1.0, 2.0)  # accepted blendshape weights: ARKit's [0, 1] plus overshoot/undo headroom
MAX_ANGLE_DEG = 90.0  # larger relative head rotations are taken as bad input (radians? wrong units?)


def _check_motion(blendshapes: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> None:
    """Raise ValueError naming the first offending value of [T,52] / [T,3] / [T,3] motion arrays."""
    t = blendshapes.shape[0] if blendshapes.ndim == 2 else -1
    for name, arr, width in (("blendshapes", blendshapes, NUM_BLENDSHAPES), ("rotation", rotation, 3),
                             ("translation", translation, 3)):
        if arr.shape != (t, width):
            raise ValueError(f"{name} must be [T, {width}] with T={t}, got {arr.shape}")
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            f, c = bad[0]
            raise ValueError(f"{name}[{f}, {c}] is {arr[f, c]}: motion must be finite")
    for name, arr, lo, hi in (("blendshapes", blendshapes, *WEIGHT_RANGE),
                              ("rotation", rotation, -MAX_ANGLE_DEG, MAX_ANGLE_DEG)):
        bad = np.argwhere((arr < lo) | (arr > hi))
        if bad.size:
            f, c = bad[0]
            label = BLENDSHAPE_NAMES[c] if name == "blendshapes" else ("yaw", "pitch", "roll")[c]
            raise ValueError(f"{name}[{f}] {label} = {arr[f, c]} is outside [{lo}, {hi}]")
    bad = np.flatnonzero(translation[:, 2] <= -1.0)
    if bad.size:
        raise ValueError(f"translation[{bad[0]}] z = {translation[bad[0], 2]} would scale the face to <= 0 "
                         "(z is a relative scale change and must be > -1)")


def _head_rotations(rotation_deg: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees [T, 3] -> R - I [T, 3, 3] in face axes (exactly 0 for zero angles)."""
    yaw, pitch, roll = np.radians(rotation_deg).T
    zero, one = np.zeros_like(yaw), np.ones_like(yaw)

    def stack(rows: list[list[np.ndarray]]) -> np.ndarray:
        return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)  # [T, 3, 3]

    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(-pitch), np.sin(-pitch), np.cos(roll), np.sin(roll)
    r_yaw = stack([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    r_pitch = stack([[one, zero, zero], [zero, cp, -sp], [zero, sp, cp]])
    r_roll = stack([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
    return r_roll @ r_pitch @ r_yaw - np.eye(3)


class FaceRig:
    """Poses one portrait's 68 landmarks from `FaceMotion`: see the module docstring for the model.

    Build once per portrait (a few ms); `track`, `deform` and `frame` are then pure array math.
    """

    def __init__(self, source: SourceFace) -> None:
        mesh, lm = np.asarray(source.mesh), np.asarray(source.landmarks68)
        if mesh.ndim != 2 or mesh.shape[1] != 3 or mesh.shape[0] < 468:
            raise ValueError(f"source mesh must be [478, 3] (or [468, 3]), got {mesh.shape}")
        if lm.shape != (68, 2):
            raise ValueError(f"source landmarks68 must be [68, 2], got {lm.shape}")
        if not (np.isfinite(mesh).all() and np.isfinite(lm).all()):
            raise ValueError("source face has non-finite mesh or landmark coordinates")
        self.source = source
        self.reference = lm.astype(np.float32)
        self.face: FaceFrame = face_frame(mesh, lm)
        self.bases = build_bases(self.face)  # [52, 68, 3] face units, read-only
        self.bases.setflags(write=False)
        self.reference.setflags(write=False)
        self._pivot = self.face.to_image(self.face.pivot)  # [3] image pixels
        self._centre = self.face.image_points.mean(axis=0)  # [3]
        self._shift_unit = source.interocular
        logger.debug("face rig: unit %.1f px, axes\n%s", self.face.unit, np.round(self.face.axes, 3))

    def basis(self, name: str) -> np.ndarray:
        """Image displacement float32 [68, 2] (pixels) of blendshape `name` at weight 1, no head motion."""
        d = self.face.unit * self.bases[blendshape_index(name)] @ self.face.axes.T
        return d[:, :2].astype(np.float32)

    def deform(self, blendshapes: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
        """Landmarks of T poses (no frame-0 forcing).

        blendshapes: [T, 52] ARKit weights, nominally [0, 1] (accepted in `WEIGHT_RANGE`).
        rotation: [T, 3] (yaw, pitch, roll) degrees relative to the portrait, |angle| <= 90.
        translation: [T, 3] x, y in interocular units (image axes), z relative scale (> -1).
        Returns float32 [T, 68, 2] in source-image pixels; all-zero motion gives exactly `reference`.
        """
        bs = np.asarray(blendshapes, dtype=np.float64)
        rot = np.asarray(rotation, dtype=np.float64)
        tr = np.asarray(translation, dtype=np.float64)
        _check_motion(bs, rot, tr)
        face = self.face
        disp = np.einsum("tk,kpc->tpc", bs, self.bases)  # [T,52] x [52,68,3] -> [T,68,3] face units
        disp = self._no_crossing(disp)
        moved = face.image_points + face.unit * disp @ face.axes.T  # [T,68,3] image pixels
        # Head rotation about the pivot, in the portrait's head axes: x' = x + (A R A^T - I)(x - pivot).
        turn = face.axes @ _head_rotations(rot) @ face.axes.T  # [T,3,3]
        moved = moved + np.einsum("tij,tpj->tpi", turn, moved - self._pivot)
        centre = self._centre + turn @ (self._centre - self._pivot)  # [T,3]
        xy, centre_xy = moved[..., :2], centre[:, None, :2]  # [T,68,2], [T,1,2]
        xy = xy + tr[:, None, 2:3] * (xy - centre_xy) + tr[:, None, :2] * self._shift_unit
        return xy.astype(np.float32)

    def frame(self, blendshapes: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
        """One pose: blendshapes [52], rotation [3], translation [3] -> float32 [68, 2] pixels."""
        bs, rot, tr = (np.asarray(a, dtype=np.float64) for a in (blendshapes, rotation, translation))
        if bs.shape != (NUM_BLENDSHAPES,) or rot.shape != (3,) or tr.shape != (3,):
            raise ValueError(f"frame() takes blendshapes [52], rotation [3], translation [3]; got "
                             f"{bs.shape}, {rot.shape}, {tr.shape}")
        return self.deform(bs[None], rot[None], tr[None])[0]

    def track(self, motion: FaceMotion) -> LandmarkTrack:
        """The landmark track of `motion`; frame 0 is the portrait itself (MOFA's reference frame)."""
        points = self.deform(motion.blendshapes, motion.rotation, motion.translation)
        if motion.num_frames and np.abs(points[0] - self.reference).max() > 0:
            logger.debug("frame 0 of the motion is not neutral; the rig holds frame 0 at the portrait")
        points[:1] = self.reference
        return LandmarkTrack(points=points, reference=self.reference.copy(), fps=motion.fps)

    def _no_crossing(self, disp: np.ndarray) -> np.ndarray:
        """Keep inner lips and eyelids from crossing: displacement [T,68,3] -> corrected copy."""
        disp = disp.copy()
        rest = self.face.points  # [68, 3]
        for pairs, follow in ((LIP_PAIRS, LIP_FOLLOW), (LID_PAIRS, {})):
            upper, lower = np.array(pairs).T
            rest_gap = rest[lower, 1] - rest[upper, 1]  # [P]
            gap = rest_gap + disp[:, lower, 1] - disp[:, upper, 1]  # [T, P]
            short = np.maximum(np.minimum(rest_gap, 0.0) - gap, 0.0)  # [T, P], > 0 where crossed
            if not short.any():
                continue
            for j, (u, v) in enumerate(pairs):
                for i, sign in ((u, -0.5), (v, 0.5)):
                    disp[:, i, 1] += sign * short[:, j]
                    if i in follow:
                        outer, f = follow[i]
                        disp[:, outer, 1] += f * sign * short[:, j]
        return disp
