"""Image loading: every mode and orientation becomes RGB uint8; bad input is one clear ImageError."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceapp.errors import ImageError
from faceapp.imageio import decode_jpeg, encode_jpeg, load_image


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_rgb_png_round_trips_exactly(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = load_image(_save(Image.fromarray(arr), tmp_path / "a.png"))
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    assert np.array_equal(out, arr)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    g = np.arange(200, dtype=np.uint8).reshape(10, 20)
    out = load_image(_save(Image.fromarray(g, "L"), tmp_path / "g.png"))
    assert out.shape == (10, 20, 3)
    assert np.array_equal(out[:, :, 0], g) and np.array_equal(out[:, :, 2], g)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red, fully transparent on the left half
    rgba[:, 2:, 3] = 255
    out = load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "t.png"))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 3].tolist() == [200, 0, 0]


def test_palette_image_is_converted(tmp_path):
    img = Image.new("P", (8, 8))
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    img.putpixel((1, 1), 1)
    out = load_image(_save(img, tmp_path / "p.png"))
    assert out[1, 1].tolist() == [10, 20, 30]
    assert out[0, 0].tolist() == [0, 0, 0]


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    g = np.full((6, 6), 65535, dtype=np.uint16)
    g[0, 0] = 0
    g[1, 1] = 32896  # mid-grey in 16 bits
    out = load_image(_save(Image.fromarray(g), tmp_path / "g16.png"))
    assert out[2, 2].tolist() == [255, 255, 255]
    assert out[0, 0].tolist() == [0, 0, 0]
    assert abs(int(out[1, 1, 0]) - 128) <= 1


def test_exif_orientation_is_honoured(tmp_path):
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    arr[:, :10] = 255  # left half white in the stored pixels
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (20, 10, 3)  # displayed upright: portrait
    assert out[2, 5].mean() > 200 and out[-3, 5].mean() < 60  # white ends up on top


def test_huge_jpeg_is_downscaled_on_decode(tmp_path):
    path = _save(Image.new("RGB", (6000, 4000), (90, 120, 150)), tmp_path / "big.jpg", quality=80)
    out = load_image(path, max_side=1000)
    assert max(out.shape[:2]) == 1000 and out.shape[:2] == (667, 1000)
    assert abs(int(out[300, 500, 1]) - 120) <= 3


def test_array_inputs_of_other_dtypes(tmp_path):
    f = np.full((5, 5, 3), 0.5, dtype=np.float32)
    assert load_image(f)[0, 0].tolist() == [128, 128, 128]
    u16 = np.full((5, 5, 3), 65535, dtype=np.uint16)
    assert load_image(u16)[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((5, 5, 2), np.uint8))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.jpg", "no such file"),
        (lambda p: p, "is a folder"),
        (lambda p: _write(p / "empty.jpg", b""), "empty"),
        (lambda p: _write(p / "text.jpg", b"hello, not a picture"), "not an image"),
    ],
)
def test_bad_inputs_give_one_clear_error(tmp_path, make, message):
    with pytest.raises(ImageError, match=message):
        load_image(make(tmp_path))


def test_truncated_jpeg_is_an_image_error(tmp_path):
    path = _save(Image.new("RGB", (300, 300), (10, 200, 30)), tmp_path / "full.jpg")
    data = path.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(cut)


def test_jpeg_encode_decode_keeps_the_picture():
    arr = np.zeros((50, 50, 3), dtype=np.uint8)
    arr[:, 25:] = (200, 100, 50)
    back = decode_jpeg(encode_jpeg(arr))
    assert back.shape == arr.shape
    assert np.abs(back.astype(int) - arr).mean() < 3
