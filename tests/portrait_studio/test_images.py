"""User images: the pixel limit is checked from the header, high-bit-depth images keep their range,
transparent mask pixels are unpainted."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from portrait_studio.errors import InputError
from portrait_studio.images import load_mask, load_rgb
from portrait_studio.portrait import load_portrait


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path, side: int = 21000):
    """A ~50 KB PNG that declares side x side RGB pixels (a decompression bomb)."""
    raw = zlib.compress(bytes(side * 3 + 1) * 8, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + _chunk(b"IDAT", raw) + _chunk(b"IEND", b""))
    return path


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InputError) as info:
            load_portrait(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "441,000,000 pixels" in message and "image pixels" in message and "64,000,000" in message
    assert time.perf_counter() - start < 2 and peak < 50e6


def test_mask_pixel_limit(tmp_path):
    with pytest.raises(InputError, match=r"9000x9000 = 81,000,000 pixels, over the 64,000,000 pixels limit"):
        load_mask(bomb_png(tmp_path / "mask.png", 9000), 64, 64)


def test_16bit_grayscale_png_keeps_its_range(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)  # uint16 -> mode I;16, a 16-bit grayscale PNG
    assert Image.open(path).mode in ("I;16", "I")
    rgb = load_rgb(path)
    assert rgb.shape == (32, 256, 3) and rgb.dtype == np.uint8
    row = rgb[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and 120 <= row[128] <= 136
    assert np.all(np.diff(row) >= 0) and len(np.unique(row)) > 200  # a ramp, not black and white


@pytest.mark.parametrize("values,expect_mid", [
    (np.linspace(0.0, 1.0, 256, dtype=np.float32), 128),  # float in 0..1: scaled by 255
    (np.linspace(-500.0, 1500.0, 256, dtype=np.float32), 128),  # other floats: their own min..max
])
def test_float_tiff_keeps_its_range(tmp_path, values, expect_mid):
    path = tmp_path / "f.tiff"
    Image.fromarray(np.tile(values, (16, 1)), "F").save(path)
    row = load_rgb(path)[0, :, 1].astype(int)
    assert row[0] == 0 and row[-1] == 255 and abs(row[128] - expect_mid) <= 3


def test_int_tiff_keeps_its_range(tmp_path):
    path = tmp_path / "i.tiff"
    Image.fromarray(np.tile(np.linspace(0, 65535, 256).astype(np.int32), (16, 1)), "I").save(path)
    row = load_rgb(path)[0, :, 2].astype(int)
    assert row[0] == 0 and row[-1] == 255 and 120 <= row[128] <= 136


def test_rgba_mask_transparent_is_unpainted(tmp_path):
    rgba = np.full((40, 40, 4), 255, np.uint8)
    rgba[:, :20, 3] = 0  # left half: white but fully transparent
    path = tmp_path / "brush.png"
    Image.fromarray(rgba, "RGBA").save(path)
    mask = load_mask(path, 40, 40)
    assert mask[:, :18].max() == 0.0 and mask[:, 22:].min() == 1.0


def test_small_and_corrupt_images(tmp_path):
    Image.new("RGB", (10, 40)).save(tmp_path / "thin.png")
    with pytest.raises(InputError, match="at least 16x16"):
        load_portrait(tmp_path / "thin.png")
    (tmp_path / "bad.png").write_bytes(bomb_png(tmp_path / "b.png", 100).read_bytes()[:60])
    with pytest.raises(InputError, match="corrupt|not an image"):
        load_portrait(tmp_path / "bad.png")
