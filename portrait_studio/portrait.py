"""Loading and pre-processing the portrait photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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


def resize_short_side(image: np.ndarray, short_side: int, multiple: int = 2) -> np.ndarray:
    """Scale so the short side is `short_side` (Lanczos), then centre-crop both sides to a multiple.

    `multiple=2` suits H.264 (even sizes, the warp engine); `multiple=64` is what MOFA/SVD need.
    Returns uint8 [H', W', 3] with min(H', W') == short_side rounded down to `multiple`.
    """
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    new_w, new_h = max(multiple, round(w * scale)), max(multiple, round(h * scale))
    if (new_w, new_h) != (w, h):
        image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.LANCZOS))
    crop_w, crop_h = new_w - new_w % multiple, new_h - new_h % multiple
    x0, y0 = (new_w - crop_w) // 2, (new_h - crop_h) // 2
    return np.ascontiguousarray(image[y0:y0 + crop_h, x0:x0 + crop_w])
