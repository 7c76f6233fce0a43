"""Loading and pre-processing the portrait photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from landmark_drivers import SourceFace

from .errors import InputError

Image.MAX_IMAGE_PIXELS = 20000 * 20000  # refuse decompression bombs beyond 400 MP


def load_portrait(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 [H, W, 3] RGB (EXIF orientation applied, alpha on white).

    Raises InputError for a missing file, a file that is not an image, or a corrupt one.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(canvas, rgba)
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise InputError(f"{path} is not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path} is a corrupt or unreadable image ({exc})") from None
    if rgb.shape[0] < 16 or rgb.shape[1] < 16:
        raise InputError(f"{path} is only {rgb.shape[1]}x{rgb.shape[0]} pixels; a portrait needs at least 64x64")
    return rgb


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
