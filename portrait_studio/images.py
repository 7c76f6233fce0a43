"""Reading user images safely: the portrait photo and the masks (motion brush, landmark mask).

- The pixel count is read from the file header and checked against `LIMITS.image_pixels` before
  anything is decoded (a few-KB PNG can declare 21000x21000 pixels: 5.5 GB once decoded).
- High-bit-depth images keep their real range: 16-bit grayscale PNG/TIFF is scaled from 0..65535,
  32-bit integer TIFF from 0..65535 when its values fit there (else from its own min..max), and float
  TIFF from 0..1 when its values lie there (else from its own min..max); nothing is clipped to black
  and white.
- A mask's transparent parts count as unpainted (a painted RGBA layer exported as is works).
"""

from __future__ import annotations

import contextlib
import re
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .limits import LIMITS

# PIL's own bomb guard warns above this and refuses above twice it; ours (from the header) runs first
Image.MAX_IMAGE_PIXELS = int(LIMITS.image_pixels.value)

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
# what PIL's decoders and EXIF parser raise on damaged files (struct.error, IndexError, ... besides OSError)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError,
                  ZeroDivisionError)


@contextlib.contextmanager
def open_image(path: str | Path, what: str) -> Iterator[Image.Image]:
    """Open `path` (header only) and check its declared size; yield the PIL image, not yet decoded.

    what: how messages name the file ("image", "mask"). Raises InputError for a missing file, a file PIL
    does not recognise, or one that declares more than `LIMITS.image_pixels` pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    limit = LIMITS.image_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(f"{path} is not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:  # PIL's own guard fires at twice the limit, from the header
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else f"more than twice {limit}"
        raise InputError(f"{path} declares {size}, over the {limit} limit (image pixels); "
                         "downscale it first") from None
    except _DECODE_ERRORS as exc:
        raise InputError(f"{path} is a corrupt or unreadable image ({_short(exc)})") from None
    with img:
        width, height = img.size
        if width * height > limit.value:
            raise InputError(f"{path} is {width}x{height} = {width * height:,} pixels, over the {limit} limit "
                             "(image pixels); downscale it first")
        if width < 1 or height < 1:
            raise InputError(f"{path} declares an empty {width}x{height} image")
        yield img


def decode(img: Image.Image, path: str | Path) -> Image.Image:
    """Decode an image from `open_image` with EXIF orientation applied; InputError when corrupt."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            return ImageOps.exif_transpose(img)
    except (*_DECODE_ERRORS, Image.DecompressionBombError) as exc:
        raise InputError(f"{path} is a corrupt or unreadable image ({_short(exc)})") from None


def gray_8bit(img: Image.Image) -> Image.Image | None:
    """A single-channel high-bit-depth image ("I;16*", "I", "F") as 8-bit "L" over its real range; else None."""
    if img.mode not in _SIXTEEN_BIT + ("I", "F"):
        return None
    values = np.asarray(img)
    if img.mode in _SIXTEEN_BIT:
        scaled = values.astype(np.float32) / 257.0
    elif img.mode == "I":
        values = values.astype(np.float64)
        lo, hi = float(values.min()), float(values.max())
        scaled = values / 257.0 if lo >= 0 and hi <= 65535 else _stretch(values, lo, hi)
    else:
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(values.min()), float(values.max())
        scaled = values * 255.0 if lo >= 0 and hi <= 1 else _stretch(values, lo, hi)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def _stretch(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.zeros_like(values) if hi <= lo else (values - lo) * (255.0 / (hi - lo))


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 [H, W, 3] RGB: EXIF orientation applied, alpha composited on white,
    high-bit-depth grayscale mapped from its real range. Raises InputError (see `open_image`)."""
    with open_image(path, "image") as img:
        img = decode(img, path)
        gray = gray_8bit(img)
        if gray is not None:
            img = gray
        elif img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(canvas, rgba)
        try:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
        except _DECODE_ERRORS as exc:
            raise InputError(f"{path} is a corrupt or unreadable image ({_short(exc)})") from None


def load_mask(path: str | Path, height: int, width: int) -> np.ndarray:
    """A user mask resized to (height, width) as float32 [H, W] in [0, 1]: white = 1.

    Transparent pixels count as unpainted (0): the gray value is multiplied by the alpha.
    """
    with open_image(path, "mask") as img:
        img = decode(img, path)
        try:
            gray = gray_8bit(img)
            if gray is None and ("A" in img.getbands() or (img.mode == "P" and "transparency" in img.info)):
                rgba = img.convert("RGBA")
                lum = np.asarray(rgba.convert("L"), dtype=np.float32)
                alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
                gray = Image.fromarray(np.rint(lum * alpha).astype(np.uint8), "L")
            elif gray is None:
                gray = img.convert("L")
            resized = gray.resize((width, height), Image.BILINEAR)
        except _DECODE_ERRORS as exc:
            raise InputError(f"mask {path} is not a readable image ({_short(exc)})") from None
    return np.asarray(resized, dtype=np.float32) / 255.0


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
