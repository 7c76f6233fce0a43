"""Source alignment for the face-reconstruction net, and the way back from its 224 crop to the image.

Two stages, as in SadTalker's `CropAndExtract` (`--preprocess full`):

1. `face_crop`: the FFHQ-style oriented quad from the eye and mouth centres (scale
   `max(2 |eye-to-eye|, 1.8 |eye-to-mouth|)`, centre `eye_avg + 0.1 eye-to-mouth`), a 10 % border crop box,
   and the quad's axis-aligned bounding box inside it; that box is resized to 256x256 (cv2 bilinear).
2. `align_for_recon`: a least-squares scale + translation (`fit_scale_translation`, the reference's POS)
   of 5 points (eye centres, nose tip, mouth corners) to the 3D template of `similarity_Lm3D_all.mat`;
   the 256 image is resized by `s = 102 / s_fit` (PIL bicubic) and a 224x224 window is cut.

Deviations from the reference (documented, deliberate):
* Landmarks: the reference detects faces with RetinaFace and 98 WFLW points with FAN (converted to 68),
  then re-detects them on the 256 crop. Portrait Studio analyses faces with mediapipe: `SourceFace.landmarks68`
  (mediapipe mesh mapped to iBUG-68) drives both the quad and the 5-point fit (mapped into the 256 crop by the
  same box transform used on the way back), so no second detection runs.
* No "shrink" pass: the reference halves huge images (face quad >= 2048 px) before cropping and then maps
  landmarks back into the *shrunken* image; here everything stays at full resolution.
* When the quad box sticks out of the border crop box (faces touching the image edge) the reference crops
  the smaller region but maps back with the larger box; here the box actually cropped is used both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

CROP_SIZE = 256  # side of the face crop the landmarks and 3DMM fit live in
RECON_SIZE = 224  # input side of the reconstruction net
RESCALE = 102.0  # target scale of the 5-point fit


@dataclass(frozen=True)
class FaceCrop:
    """The source-image box (pixels, x0 <= x < x1, y0 <= y < y1) that becomes the 256x256 face crop."""

    x0: int
    y0: int
    x1: int
    y1: int

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image pixels [..., 2] (x, y) -> 256-crop pixels."""
        scale = np.array([CROP_SIZE / (self.x1 - self.x0), CROP_SIZE / (self.y1 - self.y0)])
        return (np.asarray(points, np.float64) - [self.x0, self.y0]) * scale

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """256-crop pixels [..., 2] -> image pixels."""
        scale = np.array([(self.x1 - self.x0) / CROP_SIZE, (self.y1 - self.y0) / CROP_SIZE])
        return np.asarray(points, np.float64) * scale + [self.x0, self.y0]


@dataclass(frozen=True)
class Alignment:
    """How the 224 reconstruction crop sits in the source image (the reference's `trans_params` + boxes)."""

    crop: FaceCrop  # source box -> 256 crop
    scale: float  # s: the 256 crop is resized by s before the 224 window is cut
    translation: tuple[float, float]  # (tx, ty) of the 5-point fit, 256-crop pixels with y pointing up
    left: int  # 224 window offset in the resized crop (x)
    up: int  # 224 window offset in the resized crop (y, down)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """224-crop pixels [..., 2] (u right, v down) -> source-image pixels (x, y), float64."""
        crop = (np.asarray(points, np.float64) + [self.left, self.up]) / self.scale  # -> 256 crop
        return self.crop.to_image(crop)


def face_crop(landmarks68: np.ndarray, image_size: tuple[int, int]) -> FaceCrop:
    """The reference's `align_face` quad for 68 iBUG landmarks [68, 2] (x, y) in an image (height, width)."""
    lm = np.asarray(landmarks68, np.float64)
    height, width = image_size
    eye_left, eye_right = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2.0, eye_right - eye_left
    eye_to_mouth = (lm[48] + lm[54]) / 2.0 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1.0, 1.0]
    x = x / np.hypot(*x) * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1.0, 1.0]
    centre = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])  # TL, BL, BR, TR
    qsize = np.hypot(*x) * 2.0
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (max(int(np.floor(quad[:, 0].min())) - border, 0), max(int(np.floor(quad[:, 1].min())) - border, 0),
            min(int(np.ceil(quad[:, 0].max())) + border, width), min(int(np.ceil(quad[:, 1].max())) + border, height))
    if crop[2] - crop[0] < width or crop[3] - crop[1] < height:
        quad = quad - crop[:2]
    quad = quad + 0.5
    lx, ly = int(max(min(quad[0, 0], quad[1, 0]), 0)), int(max(min(quad[0, 1], quad[3, 1]), 0))
    rx, ry = int(min(max(quad[2, 0], quad[3, 0]), width)), int(min(max(quad[2, 1], quad[1, 1]), height))
    box = FaceCrop(crop[0] + lx, crop[1] + ly, min(crop[0] + rx, crop[2]), min(crop[1] + ry, crop[3]))
    if box.x1 - box.x0 < 2 or box.y1 - box.y0 < 2:
        raise ValueError(f"face crop is degenerate: {box} for an image of {image_size}")
    return box


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """[68, D] -> [5, D]: left-eye centre (36-41 ends), right-eye centre, nose tip (30), mouth corners (48, 54)."""
    lm = np.asarray(landmarks68, np.float64)
    return np.stack([(lm[36] + lm[39]) / 2.0, (lm[42] + lm[45]) / 2.0, lm[30], lm[48], lm[54]])


def fit_scale_translation(points2d: np.ndarray, template3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares affine camera `p = [R1; R2] X + t` of the template [n, 3] onto points [n, 2].

    Returns (t float64 [2], s = mean row norm of the 2x3 matrix).
    """
    n = points2d.shape[0]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3], a[0::2, 3] = template3d, 1.0
    a[1::2, 4:7], a[1::2, 7] = template3d, 1.0
    k = np.linalg.lstsq(a, np.asarray(points2d, np.float64).reshape(2 * n), rcond=None)[0]  # [x0, y0, x1, ...]
    scale = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2.0
    return np.array([k[3], k[7]]), float(scale)


def align_for_recon(image: np.ndarray, landmarks68: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, Alignment]:
    """The reconstruction net's input for a portrait.

    image: uint8 [H, W, 3] RGB; landmarks68: float [68, 2] pixels (x, y) of that image; template: float
    [5, 3] from `bfm.load_lm3d_template`. Returns (float32 [224, 224, 3] RGB in [0, 1], Alignment).
    """
    box = face_crop(landmarks68, image.shape[:2])
    crop = cv2.resize(np.ascontiguousarray(image[box.y0:box.y1, box.x0:box.x1]), (CROP_SIZE, CROP_SIZE))
    lm = box.to_crop(landmarks68)
    lm[:, 1] = CROP_SIZE - 1 - lm[:, 1]  # y up, as the fit expects
    t, s_fit = fit_scale_translation(five_points(lm), template)
    if not s_fit > 0:
        raise ValueError(f"5-point alignment failed (scale {s_fit})")
    s = RESCALE / s_fit
    size = int(CROP_SIZE * s)
    left = int(size / 2 - RECON_SIZE / 2 + (t[0] - CROP_SIZE / 2) * s)
    up = int(size / 2 - RECON_SIZE / 2 + (CROP_SIZE / 2 - t[1]) * s)
    resized = Image.fromarray(crop).resize((size, size), resample=Image.Resampling.BICUBIC)
    window = np.asarray(resized.crop((left, up, left + RECON_SIZE, up + RECON_SIZE)), np.float32) / 255.0
    return window, Alignment(crop=box, scale=s, translation=(float(t[0]), float(t[1])), left=left, up=up)
