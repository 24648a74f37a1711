"""Framing and quality variants of LFW, as verification benchmarks (issue 13).

Each variant is a pure function of one RGB ``uint8`` image (H x W x 3) that returns the
variant's image; :func:`apply_variant` dispatches by name. ``scripts/make_lfw_variants.py``
writes them for the images of LFW View 2 with a pairs CSV per variant (the images go to a
cache folder, never into the repository).

``tight``
    The box x 70..180, y 65..195 of the 250 x 250 LFW image (110 x 130 pixels): the face
    fills the picture, like an ID or badge photo.
``small``
    The whole image scaled to 1/2 (250 -> 125, area averaging) and pasted at the centre of
    a 640 x 480 frame of grey 128, like a person far from a webcam: top-left corner
    ``((640 - 125) // 2, (480 - 125) // 2) = (257, 177)``.
``rotated``
    Rotated in plane by +20 or -20 degrees about the image centre, same size, corners
    filled by reflection. The sign alternates with LFW's image number: odd numbers
    (``_0001``, ``_0003``...) +20 (counter-clockwise as displayed), even ones -20
    (:func:`rotation_angle`); so some same-person pairs differ by 40 degrees.
``lowres``
    Downscaled to 64 x 64 (area averaging) and back to the original size (bilinear).
``jpeg``
    JPEG-compressed at quality 15 (Pillow, 4:2:0 chroma subsampling); the function returns
    the decoded image, :func:`jpeg_bytes` the file itself (which the writer stores as is).
``dark``
    Gamma 2.5 on every channel: ``out = round(255 * (in / 255) ** 2.5)``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from faceapp.errors import ImageError

__all__ = [
    "DARK_GAMMA",
    "JPEG_QUALITY",
    "LOWRES_SIZE",
    "ROTATION_DEGREES",
    "SMALL_FRAME",
    "SMALL_GREY",
    "SMALL_SCALE",
    "TIGHT_BOX",
    "VARIANTS",
    "apply_variant",
    "dark",
    "jpeg",
    "jpeg_bytes",
    "lowres",
    "rotated",
    "rotation_angle",
    "small",
    "small_offset",
    "tight",
]

#: (x1, y1, x2, y2) of the ``tight`` crop, x2/y2 exclusive: 110 x 130 pixels of a 250 x 250 image.
TIGHT_BOX = (70, 65, 180, 195)
#: (width, height) of the ``small`` frame, the scale of the pasted image, the frame's grey.
SMALL_FRAME = (640, 480)
SMALL_SCALE = 0.5
SMALL_GREY = 128
ROTATION_DEGREES = 20.0
LOWRES_SIZE = 64
JPEG_QUALITY = 15
DARK_GAMMA = 2.5

_IMAGE_NUMBER = re.compile(r"_(\d+)$")


def _check(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"expected an RGB uint8 image (H x W x 3), got {img.dtype} {img.shape}")
    return img


def tight(img: np.ndarray) -> np.ndarray:
    """The :data:`TIGHT_BOX` crop (a copy), 130 rows x 110 columns."""
    img = _check(img)
    x1, y1, x2, y2 = TIGHT_BOX
    h, w = img.shape[:2]
    if w < x2 or h < y2:
        raise ImageError(f"the tight box {TIGHT_BOX} needs an image of at least {x2}x{y2}, got {w}x{h}")
    return img[y1:y2, x1:x2].copy()


def _small_size(img: np.ndarray) -> tuple[int, int]:
    h, w = img.shape[:2]
    return max(1, round(w * SMALL_SCALE)), max(1, round(h * SMALL_SCALE))


def small_offset(img: np.ndarray) -> tuple[int, int]:
    """(x, y) of the top-left corner of the scaled image inside the ``small`` frame."""
    sw, sh = _small_size(img)
    fw, fh = SMALL_FRAME
    return (fw - sw) // 2, (fh - sh) // 2


def small(img: np.ndarray) -> np.ndarray:
    """The image scaled by :data:`SMALL_SCALE` at the centre of a grey 640 x 480 frame."""
    img = _check(img)
    sw, sh = _small_size(img)
    fw, fh = SMALL_FRAME
    if sw > fw or sh > fh:
        raise ImageError(f"a {img.shape[1]}x{img.shape[0]} image scaled by {SMALL_SCALE} does not fit {fw}x{fh}")
    scaled = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    out = np.full((fh, fw, 3), SMALL_GREY, np.uint8)
    x, y = small_offset(img)
    out[y : y + sh, x : x + sw] = scaled
    return out


def rotation_angle(path: str | Path) -> float:
    """+20 for an odd LFW image number (``Name_0001.jpg``), -20 for an even one."""
    m = _IMAGE_NUMBER.search(Path(path).stem)
    if m is None:
        raise ImageError(f"{Path(path).name}: no LFW image number (Name_NNNN) to choose the rotation")
    return ROTATION_DEGREES if int(m.group(1)) % 2 else -ROTATION_DEGREES


def rotated(img: np.ndarray, angle: float) -> np.ndarray:
    """The image rotated by ``angle`` degrees (positive: counter-clockwise as displayed) about
    its centre, same size, the corners filled by reflection."""
    img = _check(img)
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(angle), 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def lowres(img: np.ndarray) -> np.ndarray:
    """Down to :data:`LOWRES_SIZE` x :data:`LOWRES_SIZE` (area) and back to the original size (bilinear)."""
    img = _check(img)
    h, w = img.shape[:2]
    low = cv2.resize(img, (LOWRES_SIZE, LOWRES_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)


def jpeg_bytes(img: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """The image as a JPEG file of the given quality (Pillow's encoder, 4:2:0)."""
    img = _check(img)
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=int(quality), subsampling=2)
    return buf.getvalue()


def jpeg(img: np.ndarray) -> np.ndarray:
    """The image after a round trip through a quality-15 JPEG."""
    with Image.open(io.BytesIO(jpeg_bytes(img))) as im:
        return np.asarray(im.convert("RGB"))


_DARK_LUT = np.round(255.0 * (np.arange(256) / 255.0) ** DARK_GAMMA).astype(np.uint8)


def dark(img: np.ndarray) -> np.ndarray:
    """Gamma :data:`DARK_GAMMA` on every channel (a lookup table of ``round(255 * (v/255)**2.5)``)."""
    return _DARK_LUT[_check(img)]


#: name -> function of (image, source path); the path only chooses the rotation's sign.
VARIANTS: dict[str, Callable[[np.ndarray, Path], np.ndarray]] = {
    "tight": lambda img, path: tight(img),
    "small": lambda img, path: small(img),
    "rotated": lambda img, path: rotated(img, rotation_angle(path)),
    "lowres": lambda img, path: lowres(img),
    "jpeg": lambda img, path: jpeg(img),
    "dark": lambda img, path: dark(img),
}


def apply_variant(name: str, img: np.ndarray, path: str | Path) -> np.ndarray:
    """The variant ``name`` of ``img`` (read from ``path``, whose LFW number picks the rotation)."""
    try:
        fn = VARIANTS[name]
    except KeyError:
        raise ImageError(f"unknown variant {name!r}; expected one of {', '.join(VARIANTS)}") from None
    return fn(img, Path(path))
