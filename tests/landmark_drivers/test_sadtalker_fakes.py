"""Synthetic stand-ins for the SadTalker driver's files (the real BFM and weights cannot be fetched here).

`face_layout()` is a procedural 68-point iBUG face; `write_fake_bfm()` writes `BFM_model_front.mat` and
`similarity_Lm3D_all.mat` with the real field names around it; `write_checkpoint()` writes a safetensors
file with the three published prefixes (plus renderer keys the driver must ignore).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from scipy.io import savemat

from landmark_drivers import SourceFace
from landmark_drivers.sadtalker.align import face_crop, five_points


def face_layout() -> np.ndarray:
    """float64 [68, 3]: an upright frontal face, x right, y down, z toward the camera; ~1.5 units wide."""
    pts = np.zeros((68, 3))
    phi = np.pi - np.pi * np.arange(17) / 16.0  # jaw: image-left ear, down round the chin, image-right ear
    pts[0:17, 0], pts[0:17, 1] = 0.75 * np.cos(phi), -0.1 + 0.95 * np.sin(phi)
    for start, x0 in ((17, -0.6), (22, 0.15)):  # brows
        xs = x0 + np.linspace(0.0, 0.45, 5)
        pts[start:start + 5, 0], pts[start:start + 5, 1] = xs, -0.45 - 0.05 * np.sin(np.linspace(0, np.pi, 5))
    pts[27:31, 1], pts[27:31, 2] = np.linspace(-0.3, 0.05, 4), np.linspace(0.15, 0.45, 4)  # nose bridge
    pts[31:36, 0], pts[31:36, 1], pts[31:36, 2] = np.linspace(-0.15, 0.15, 5), 0.12, 0.25  # nostrils
    eye = np.radians([180, 240, 300, 0, 60, 120])  # left corner, upper lid (y < 0), right corner, lower lid
    for start, cx in ((36, -0.35), (42, 0.35)):
        pts[start:start + 6, 0] = cx + 0.12 * np.cos(eye)
        pts[start:start + 6, 1] = -0.3 + 0.05 * np.sin(eye)
    mouth = np.radians(np.arange(180, 540, 30))  # 48 left corner, upper lip, 54 right corner, lower lip
    pts[48:60, 0], pts[48:60, 1] = 0.3 * np.cos(mouth), 0.45 + 0.12 * np.sin(mouth)
    inner = np.radians(np.arange(180, 540, 45))
    pts[60:68, 0], pts[60:68, 1] = 0.2 * np.cos(inner), 0.45 + 0.05 * np.sin(inner)
    bulge = 0.5 - 0.3 * (pts[:, 0] ** 2 + pts[:, 1] ** 2)
    pts[:, 2] = np.where(pts[:, 2] > 0, pts[:, 2], 0.0) + bulge
    return pts


def fake_source(size: int = 320, scale: float = 90.0) -> tuple[np.ndarray, SourceFace]:
    """(uint8 [size, size, 3] noise image, SourceFace whose landmarks68 are `face_layout()` in pixels)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    lm = (face_layout()[:, :2] * scale + [size / 2.0, size / 2.0 + 10.0]).astype(np.float32)
    face = SourceFace(image_size=(size, size), mesh=np.zeros((478, 3), np.float32), landmarks68=lm,
                      blendshapes=np.zeros(52, np.float32), pose=np.eye(4, dtype=np.float32))
    return image, face


def write_fake_bfm(folder: Path, bases: float = 0.0, extra: int = 32, offset=(0.2, -0.1, 0.3)) -> dict:
    """Write folder/BFM_model_front.mat and folder/similarity_Lm3D_all.mat; returns the arrays written.

    The 68 keypoint vertices are `face_layout()` in BFM axes (y up), shuffled among `extra` other vertices
    and shifted by `offset` (the loader must recentre over all vertices); bases are uniform(-bases, bases).
    """
    rng = np.random.default_rng(1)
    face = face_layout() * [1.0, -1.0, 1.0]  # y down -> y up
    others = rng.uniform(-0.8, 0.8, (extra, 3))
    order = rng.permutation(68 + extra)  # vertex order[j] holds point j of [face; others]
    vertices = np.zeros((68 + extra, 3))
    vertices[order] = np.concatenate([face, others])
    vertices += offset
    v3 = 3 * (68 + extra)
    arrays = {
        "meanshape": vertices.reshape(1, -1).astype(np.float32),
        "idBase": rng.uniform(-bases, bases, (v3, 80)).astype(np.float32),
        "exBase": rng.uniform(-bases, bases, (v3, 64)).astype(np.float32),
        "keypoints": (order[:68] + 1).astype(np.float64).reshape(1, 68),  # 1-based, as in the real file
        "meantex": np.zeros((1, v3), np.float32),  # present in the real file, unused
    }
    folder.mkdir(parents=True, exist_ok=True)
    savemat(str(folder / "BFM_model_front.mat"), arrays)
    savemat(str(folder / "similarity_Lm3D_all.mat"), {"lm": face - face.mean(axis=0)})
    return arrays


def write_checkpoint(path: Path, networks: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Write `{prefix}.{key}` for each network plus renderer keys; returns the tensors written."""
    tensors = {f"{prefix}.{k}": v.detach().clone().contiguous() for prefix, net in networks.items()
               for k, v in net.state_dict().items()}
    tensors["generator.first.conv.weight"] = torch.zeros(4, 3, 3, 3)
    tensors["kp_extractor.predictor.fc.bias"] = torch.zeros(2)
    tensors["he_estimator.fc_yaw.weight"] = torch.zeros(66, 2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return tensors


def test_fake_face_is_a_plausible_upright_face():
    image, face = fake_source()
    lm = face.landmarks68
    eyes = five_points(lm)
    assert eyes[0, 0] < eyes[2, 0] < eyes[1, 0]  # eyes either side of the nose tip
    assert eyes[0, 1] < eyes[2, 1] < eyes[3, 1]  # eyes above the nose above the mouth
    assert lm[8, 1] == lm[:, 1].max()  # chin lowest
    box = face_crop(lm, image.shape[:2])
    assert 0 <= box.x0 < lm[:, 0].min() and lm[:, 0].max() < box.x1 <= image.shape[1]
