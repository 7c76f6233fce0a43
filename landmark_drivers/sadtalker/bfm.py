"""Basel Face Model (front, Deep3DFaceRecon layout): 257 coefficients -> 68 landmarks in the 224 crop.

Only the 68 landmark vertices are needed, so only their rows of the bases are kept.
`BFM_model_front.mat` fields used: `meanshape` [1, 3V] (x, y, z interleaved; recentred to zero mean over
all V vertices), `idBase` [3V, 80], `exBase` [3V, 64], `keypoints` [1, 68] (1-based vertex indices).

Camera (Deep3DFaceRecon): the face is rotated by R = Rz(c) Ry(b) Rx(a) (angles a, b, c in radians) and
translated; the camera sits at z = 10 looking down -z (`z' = 10 - z`); pinhole focal 1015, centre 112:
`u = 1015 x / z' + 112`, `v = 1015 y / z' + 112`, then `v <- 224 - v` (y up -> image rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from .align import five_points
from .face_recon import COEFF_SLICES

CAMERA_DISTANCE = 10.0
FOCAL = 1015.0
CENTER = 112.0
CROP = 224.0
NUM_LANDMARKS = 68
ID_DIM = COEFF_SLICES["id"].stop - COEFF_SLICES["id"].start  # 80
EXP_DIM = COEFF_SLICES["exp"].stop - COEFF_SLICES["exp"].start  # 64


class BFMFormatError(ValueError):
    """A BFM .mat file lacks a field or holds one of the wrong shape."""


@dataclass(frozen=True)
class BFMKeypoints:
    """The BFM restricted to its 68 landmark vertices.

    mean: float64 [68, 3], the recentred mean shape at the landmarks (BFM units, y up).
    id_base: float64 [68, 3, 80]; exp_base: float64 [68, 3, 64]: shape offsets per coefficient.
    """

    mean: np.ndarray
    id_base: np.ndarray
    exp_base: np.ndarray

    def shape(self, id_coeff: np.ndarray, exp_coeff: np.ndarray) -> np.ndarray:
        """id_coeff: [T, 80]; exp_coeff: [T, 64] -> float64 [T, 68, 3] landmark vertices (model space)."""
        return (self.mean[None] + np.einsum("kdi,ti->tkd", self.id_base, id_coeff)
                + np.einsum("kde,te->tkd", self.exp_base, exp_coeff))


def _field(mat: dict, name: str, path: Path) -> np.ndarray:
    if name not in mat:
        fields = sorted(k for k in mat if not k.startswith("__"))
        raise BFMFormatError(f"{path}: field {name!r} is missing (has {fields})")
    return np.asarray(mat[name])


def load_bfm(path: str | Path) -> BFMKeypoints:
    """Read `BFM_model_front.mat` (scipy.io.loadmat; no pickles) and keep the 68 landmark vertices."""
    path = Path(path)
    mat = loadmat(str(path))
    mean = _field(mat, "meanshape", path).astype(np.float64).reshape(-1, 3)  # [1, 3V] -> [V, 3]
    vertices = mean.shape[0]
    id_base = _field(mat, "idBase", path).astype(np.float64)
    exp_base = _field(mat, "exBase", path).astype(np.float64)
    keypoints = _field(mat, "keypoints", path).astype(np.int64).reshape(-1) - 1  # 1-based -> 0-based
    if id_base.shape[0] != 3 * vertices or exp_base.shape[0] != 3 * vertices:
        raise BFMFormatError(f"{path}: idBase {id_base.shape} / exBase {exp_base.shape} do not match "
                             f"meanshape with {vertices} vertices")
    if id_base.shape[1] != ID_DIM or exp_base.shape[1] != EXP_DIM:
        raise BFMFormatError(f"{path}: expected {ID_DIM} identity and {EXP_DIM} expression bases, got "
                             f"{id_base.shape[1]} and {exp_base.shape[1]}")
    if keypoints.shape != (NUM_LANDMARKS,) or keypoints.min() < 0 or keypoints.max() >= vertices:
        raise BFMFormatError(f"{path}: keypoints must be 68 1-based indices into {vertices} vertices, got "
                             f"shape {keypoints.shape}, range {keypoints.min() + 1}..{keypoints.max() + 1}")
    mean = mean - mean.mean(axis=0, keepdims=True)  # recentre over all vertices
    return BFMKeypoints(mean=mean[keypoints],
                        id_base=id_base.reshape(vertices, 3, -1)[keypoints],  # [3V, 80] -> [V, 3, 80] -> [68, 3, 80]
                        exp_base=exp_base.reshape(vertices, 3, -1)[keypoints])


def load_lm3d_template(path: str | Path) -> np.ndarray:
    """Read `similarity_Lm3D_all.mat` (field `lm` [68, 3]) -> float64 [5, 3] alignment template
    (eye centres, nose tip, mouth corners; see `align.five_points`)."""
    path = Path(path)
    lm = _field(loadmat(str(path)), "lm", path).astype(np.float64)
    if lm.shape != (NUM_LANDMARKS, 3):
        raise BFMFormatError(f"{path}: field 'lm' must be [68, 3], got {lm.shape}")
    return five_points(lm)


def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """angles: [T, 3] (a, b, c) in radians about x, y, z -> float64 [T, 3, 3] = Rz(c) @ Ry(b) @ Rx(a)."""
    a, b, c = (np.asarray(angles, np.float64)[:, i] for i in range(3))
    one, zero = np.ones_like(a), np.zeros_like(a)
    rx = np.stack([one, zero, zero, zero, np.cos(a), -np.sin(a), zero, np.sin(a), np.cos(a)], -1).reshape(-1, 3, 3)
    ry = np.stack([np.cos(b), zero, np.sin(b), zero, one, zero, -np.sin(b), zero, np.cos(b)], -1).reshape(-1, 3, 3)
    rz = np.stack([np.cos(c), -np.sin(c), zero, np.sin(c), np.cos(c), zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def project_landmarks(coeffs: np.ndarray, bfm: BFMKeypoints) -> np.ndarray:
    """coeffs: float [T, 257] (id | exp | tex | angle | gamma | trans). Returns float64 [T, 68, 2]: (u, v)
    pixels of the 224x224 aligned crop, v pointing down (row)."""
    coeffs = np.asarray(coeffs, np.float64)
    shape = bfm.shape(coeffs[:, COEFF_SLICES["id"]], coeffs[:, COEFF_SLICES["exp"]])  # [T, 68, 3]
    rot = rotation_matrices(coeffs[:, COEFF_SLICES["angle"]])  # [T, 3, 3]
    points = np.einsum("tij,tkj->tki", rot, shape) + coeffs[:, None, COEFF_SLICES["trans"]]  # R S + t
    depth = CAMERA_DISTANCE - points[..., 2]
    if np.any(depth <= 0):
        raise ValueError(f"face behind the camera: depth min {depth.min():.3f} (translation z too large)")
    u = FOCAL * points[..., 0] / depth + CENTER
    v = FOCAL * points[..., 1] / depth + CENTER
    return np.stack([u, CROP - v], axis=-1)
