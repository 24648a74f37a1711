"""Reading images into RGB uint8 arrays, whatever the file holds.

EXIF orientation is honoured; grayscale, RGBA/LA (composited on white), palette, CMYK and
16-bit images are converted; JPEGs larger than ``max_side`` are decoded at reduced size
(libjpeg's DCT scaling) so a 100-megapixel photo never materialises at full size.
Every failure is an :class:`~faceapp.errors.ImageError` with one clear line.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceapp.errors import ImageError

log = logging.getLogger(__name__)

#: Refuse images above this many pixels outright (decompression bombs), from the file's
#: header before any decoding (every format); larger photos than any camera makes today.
MAX_PIXELS = 250_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

ImageSource = str | os.PathLike | bytes | np.ndarray | Image.Image


def _label(path: Path) -> str:
    """The path for a message: a very long one is shortened, so the message stays one short line."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def _lazy_open(fp, label: str) -> Image.Image:
    """``Image.open``: reads the header only (size, mode, format); no pixel is decoded."""
    try:
        with warnings.catch_warnings():
            # Between MAX_PIXELS and twice that PIL only warns; load_image refuses those itself.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: the image is too large (over {MAX_PIXELS // 1_000_000} megapixels)") from None
    except PermissionError:
        raise ImageError(f"{label}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image, or a format that cannot be read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{label}: cannot be read ({exc})") from None


def _open(source: str | os.PathLike | bytes) -> tuple[Image.Image, str]:
    if isinstance(source, bytes):
        if not source:
            raise ImageError("the image data is empty (0 bytes)")
        return _lazy_open(io.BytesIO(source), "image data"), "image data"
    path = Path(source)
    label = _label(path)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"{label}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ImageError(f"{label}: the file name is too long") from None
        raise ImageError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{label}: is a folder, not an image file")
    if st.st_size == 0:
        raise ImageError(f"{label}: the file is empty (0 bytes)")
    return _lazy_open(path, label), label


def _check_pixels(img: Image.Image, label: str) -> None:
    """Refuse an image over MAX_PIXELS from its header, before anything is decoded."""
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{label}: the image is too large ({width}x{height} = {width * height / 1e6:.0f} megapixels; "
            f"at most {MAX_PIXELS / 1e6:g})"
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        if mode in ("I", "F") and arr.max() > 255:
            hi = max(float(arr.max()), 1.0)
        arr8 = np.clip(arr * (255.0 / hi) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"an image array must be HxW, HxWx3 or HxWx4 (got shape {arr.shape})")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0)
        if arr.dtype != np.uint8:
            arr = _array_to_rgb(arr[:, :, :3])
        rgb = arr[:, :, :3].astype(np.float32)
        arr = (rgb * alpha + 255.0 * (1 - alpha)).round()
    if arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 257.0
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError("the image has no pixels")
    return np.ascontiguousarray(arr)


def load_image(source: ImageSource, *, max_side: int | None = 1600) -> np.ndarray:
    """Load an image as an RGB ``uint8`` array of shape (H, W, 3).

    ``source`` is a path, encoded bytes, a PIL image or an array (HxW, HxWx3 RGB, HxWx4 RGBA;
    uint8, uint16 or float in 0..1). Images with a longer side than ``max_side`` pixels are
    downscaled (aspect kept); ``None`` keeps the full size.
    """
    if isinstance(source, np.ndarray):
        arr = _array_to_rgb(source)
        return downscale(arr, max_side)
    if isinstance(source, Image.Image):
        img, label = source, "image"
    else:
        img, label = _open(source)
    try:
        with img:
            _check_pixels(img, label)
            if max_side and img.format == "JPEG" and max(img.size) > 2 * max_side:
                # Decode at 1/2, 1/4 or 1/8 scale directly: memory stays bounded.
                img.draft("RGB", (max_side, max_side))
            img.load()
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            if max_side and max(img.size) > max_side:
                img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            arr = np.asarray(img, dtype=np.uint8)
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: the image is too large (over {MAX_PIXELS // 1_000_000} megapixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{label}: truncated or corrupt image ({exc})") from None
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"{label}: the image has no pixels")
    return np.ascontiguousarray(arr)


def downscale(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink an RGB array so its longer side is at most ``max_side`` (area interpolation)."""
    if not max_side or max(image.shape[:2]) <= max_side:
        return image
    import cv2

    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, *, quality: int = 90, comment: bytes | None = None) -> bytes:
    """Encode an RGB uint8 array as JPEG bytes (the face a template keeps); ``comment``: a JPEG
    comment segment (:data:`faceapp.stored_face.MARK`)."""
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="JPEG", quality=quality, **({"comment": comment} if comment else {}))
    return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    return load_image(data, max_side=None)
