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


# -- size limits before decoding, odd paths (issue 12) -----------------------------------------
def _blank_png(path, width: int, height: int):
    """A real, valid 1-bit grayscale PNG of width x height, all black, written row by row
    (a 20000x20000 one is ~50 kB on disk; nothing of its full size is ever in memory)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        fh.write(chunk(b"IDAT", idat))
        fh.write(chunk(b"IEND", b""))
    return path


def test_the_blank_png_writer_makes_a_real_png(tmp_path):
    out = load_image(_blank_png(tmp_path / "small.png", 37, 21), max_side=None)
    assert out.shape == (21, 37, 3) and out.max() == 0


_PEAK_CHILD = """
import resource, sys
from faceapp.errors import ImageError
from faceapp.imageio import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image(sys.argv[1])
    print("loaded", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, "-")
except ImageError as exc:
    print("refused", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, exc)
"""


def test_a_20000x20000_png_is_refused_before_decoding(tmp_path):
    import subprocess
    import sys

    path = _blank_png(tmp_path / "huge.png", 20000, 20000)  # 400 Mpx > MAX_PIXELS
    assert path.stat().st_size < 1_000_000
    # In a fresh process, so the peak resident size is this load's alone (ru_maxrss is in kB).
    proc = subprocess.run([sys.executable, "-c", _PEAK_CHILD, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    verdict, grew_kb, message = proc.stdout.strip().split(" ", 2)
    assert verdict == "refused", proc.stdout
    assert "too large" in message and "20000x20000" in message
    assert int(grew_kb) < 100_000  # decoding it whole would take 400 MB (mode 1) and 1.2 GB as RGB
    assert proc.stderr == ""  # no DecompressionBombWarning either


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("GIF", "gif"),
                                      ("TIFF", "tif"), ("WEBP", "webp"), ("PPM", "ppm")])
def test_the_pixel_limit_holds_for_every_format_before_decoding(tmp_path, monkeypatch, fmt, ext):
    import faceapp.imageio as imageio

    path = _save(Image.new("RGB", (40, 30), (1, 2, 3)), tmp_path / f"a.{ext}", format=fmt)
    monkeypatch.setattr(imageio, "MAX_PIXELS", 40 * 30 - 1)
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self, *a, **k: decoded.append(self))
    with pytest.raises(ImageError, match="too large"):
        load_image(path)
    with pytest.raises(ImageError, match="too large"):
        load_image(path.read_bytes())
    assert decoded == []


def test_a_pixel_count_at_the_limit_is_accepted(tmp_path, monkeypatch):
    import faceapp.imageio as imageio

    monkeypatch.setattr(imageio, "MAX_PIXELS", 40 * 30)
    path = _save(Image.new("RGB", (40, 30), (1, 2, 3)), tmp_path / "a.png")
    assert load_image(path).shape == (30, 40, 3)


def test_a_file_name_too_long_is_an_image_error(tmp_path):
    long = tmp_path / ("x" * 1000 + ".jpg")
    with pytest.raises(ImageError, match="file name is too long") as info:
        load_image(long)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_a_path_through_a_file_is_no_such_file(tmp_path):
    f = _write(tmp_path / "plain.txt", b"x")
    with pytest.raises(ImageError, match="no such file"):
        load_image(f / "inside.jpg")


def test_bytes_that_are_not_an_image_are_an_image_error():
    with pytest.raises(ImageError, match="not an image"):
        decode_jpeg(b"definitely not a jpeg")
