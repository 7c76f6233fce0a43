"""Loading and pre-processing the portrait photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from landmark_drivers import SourceFace

from .errors import InputError
from .images import load_rgb
from .limits import LIMITS


def load_portrait(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 [H, W, 3] RGB (EXIF orientation applied, alpha on white, 16-bit and
    float images mapped from their real range).

    Raises InputError for a missing file, a file that is not an image, a corrupt one, one over
    `LIMITS.image_pixels` (checked from the header before decoding) or under `LIMITS.image_min_side`.
    """
    rgb = load_rgb(path)
    least = int(LIMITS.image_min_side.value)
    if rgb.shape[0] < least or rgb.shape[1] < least:
        raise InputError(f"{path} is only {rgb.shape[1]}x{rgb.shape[0]} pixels; a portrait needs at least "
                         f"{least}x{least} (image min side)")
    return rgb


def check_frame_size(framing: "Framing", path: str | Path) -> None:
    """Refuse an output frame whose long side is over `LIMITS.frame_long_side` (extreme aspect ratios)."""
    h, w = framing.size
    limit = LIMITS.frame_long_side
    if max(h, w) > limit.value:
        raise InputError(f"{path} would render as {w}x{h}: the long side is over the {limit} limit "
                         "(frame long side); use a smaller --size or crop the photo")


def face_too_small_message(path: str | Path, interocular: float, framing: "Framing", needed: float) -> str:
    """One line saying the face's size in the photo's own pixels (and in the frame) and the size needed."""
    src_h, src_w = framing.source_size
    out_h, out_w = framing.size
    in_photo = interocular / framing.scale
    return (f"the face in {path} is too small to animate: {in_photo:.1f} px between the outer eye corners in the "
            f"{src_w}x{src_h} photo ({interocular:.1f} px in the {out_w}x{out_h} frame); at least {needed:.0f} px "
            "are needed in both (use a larger or tighter photo)")


@dataclass(frozen=True)
class Framing:
    """How the photo maps onto the output frame: scale by `scale`, then crop at (x0, y0).

    The same transform is applied to the portrait, to user masks (motion brush, landmark mask) and
    to user coordinates (trajectories), which are all given in the original photo's pixels.
    """

    source_size: tuple[int, int]  # (height, width) of the original photo
    scale: float  # resize factor
    scaled_size: tuple[int, int]  # (height, width) after resizing
    x0: int  # crop offset (columns) in the resized image
    y0: int  # crop offset (rows)
    size: tuple[int, int]  # (height, width) of the output frame

    @classmethod
    def fit(cls, height: int, width: int, short_side: int, multiple: int = 2) -> "Framing":
        """Short side -> `short_side`; both sides centre-cropped down to a multiple of `multiple`.

        `multiple=2` suits H.264 (even sizes: the warp engine); `multiple=64` is what MOFA/SVD need.
        """
        scale = short_side / min(height, width)
        new_w, new_h = max(multiple, round(width * scale)), max(multiple, round(height * scale))
        crop_w, crop_h = new_w - new_w % multiple, new_h - new_h % multiple
        return cls((height, width), scale, (new_h, new_w), (new_w - crop_w) // 2, (new_h - crop_h) // 2,
                   (crop_h, crop_w))

    def apply_image(self, image: np.ndarray, resample: int = Image.LANCZOS) -> np.ndarray:
        """Resize and crop an image or mask `[H, W(, C)]` (uint8) of the original photo's size."""
        if image.shape[:2] != self.source_size:
            image = np.asarray(Image.fromarray(image).resize(self.source_size[::-1], Image.BILINEAR))
        new_h, new_w = self.scaled_size
        if (new_h, new_w) != image.shape[:2]:
            image = np.asarray(Image.fromarray(image).resize((new_w, new_h), resample))
        h, w = self.size
        return np.ascontiguousarray(image[self.y0:self.y0 + h, self.x0:self.x0 + w])

    def apply_points(self, xy: np.ndarray) -> np.ndarray:
        """Photo pixel coordinates `[..., 2]` (x, y) -> output-frame coordinates, clamped inside it."""
        out = np.asarray(xy, np.float64) * self.scale - (self.x0, self.y0)
        h, w = self.size
        return np.clip(out, 0, (w - 1e-3, h - 1e-3))


def resize_short_side(image: np.ndarray, short_side: int, multiple: int = 2) -> np.ndarray:
    """The portrait framed for output (see `Framing.fit`): uint8 [H', W', 3]."""
    return Framing.fit(*image.shape[:2], short_side, multiple).apply_image(image)


@dataclass(frozen=True)
class Portrait:
    """The pre-processed portrait and what face analysis found in it."""

    image: np.ndarray  # uint8 [H, W, 3] RGB at the output size
    face: SourceFace  # the animated (largest) face
    framing: Framing  # how the original photo maps onto `image` (for user masks and coordinates)
