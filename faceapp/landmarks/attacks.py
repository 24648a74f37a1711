"""Synthetic presentation attacks: videos of a still photo held up to the camera.

A printed photo is a plane. :func:`attack_video` renders one moving in front of a pinhole
camera: ``static`` (hand tremor only), ``slide`` (moved sideways and up/down), ``rotate`` (turned
in the picture plane), ``tilt_left`` / ``tilt_right`` (turned about its vertical axis, the way one
fakes a head turn with a print), ``tilt_pitch`` (tipped forward and back, which squashes the eyes
like a blink) and ``wobble`` (all at once). Each frame gets sensor noise and blur. Used by
``scripts/landmarks_attacks.py`` to measure how many attacks the liveness check rejects; never
by the product.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from faceapp.landmarks.pose import rotation_from_angles

ATTACKS = ("static", "slide", "rotate", "tilt_left", "tilt_right", "tilt_pitch", "wobble")


def _motion(kind: str, phase: float, rng_params: np.ndarray) -> tuple[float, float, float, float, float]:
    """(yaw, pitch, roll in degrees, x, y offset in mm) of the photo at ``phase`` in 0..1."""
    a, b, c, d = rng_params  # per-video amplitudes in 0.8..1.2
    s1, s2 = math.sin(2 * math.pi * phase), math.sin(math.pi * phase)
    if kind == "static":
        return 0.0, 0.0, 0.0, 0.0, 0.0
    if kind == "slide":
        return 0.0, 0.0, 0.0, 60 * a * s1, 25 * b * math.sin(4 * math.pi * phase)
    if kind == "rotate":
        return 0.0, 0.0, 25 * a * s1, 0.0, 0.0
    if kind == "tilt_left":
        return 45 * a * s2, 0.0, 0.0, 10 * b * s2, 0.0
    if kind == "tilt_right":
        return -45 * a * s2, 0.0, 0.0, -10 * b * s2, 0.0
    if kind == "tilt_pitch":
        return 0.0, 40 * a * s2, 0.0, 0.0, 0.0
    if kind == "wobble":
        return (35 * a * s1, 20 * b * math.sin(3 * math.pi * phase + 1), 10 * c * math.sin(1.4 * math.pi * phase),
                30 * d * math.sin(2 * math.pi * phase + 2), 10 * a * s2)
    raise ValueError(f"unknown attack {kind!r}; choose from {', '.join(ATTACKS)}")


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    c0, c1 = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    t = np.linspace(0, 1, w)[None, :, None]
    img = c0 * (1 - t) + c1 * t + np.zeros((h, 1, 1))
    img += cv2.GaussianBlur(rng.normal(0, 25, (h, w, 3)), (0, 0), 8)
    return np.clip(img, 0, 255).astype(np.uint8)


def attack_video(
    photo: np.ndarray,
    kind: str,
    *,
    seconds: float = 6.5,
    fps: float = 8.0,
    size: tuple[int, int] = (640, 480),
    photo_width_mm: float = 200.0,
    distance_mm: float = 520.0,
    seed: int = 0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time in s, RGB frame)`` of a printed ``photo`` (RGB) moved as ``kind``."""
    rng = np.random.default_rng(seed)
    params = rng.uniform(0.8, 1.2, 4)
    w, h = size
    f = float(max(w, h))
    cam = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    border = 12
    print_img = cv2.copyMakeBorder(photo, border, border, border, border, cv2.BORDER_CONSTANT, value=(245, 245, 240))
    ph, pw = print_img.shape[:2]
    mm = photo_width_mm / pw
    # photo pixel (u, v) -> plane point in mm, centred, y up
    to_plane = np.array([[mm, 0, -mm * (pw - 1) / 2], [0, -mm, mm * (ph - 1) / 2], [0, 0, 1]])
    flip = np.diag([1.0, -1.0, -1.0])  # viewer frame -> camera frame
    background = _background(rng, size)
    n = int(round(seconds * fps))
    tremor = np.cumsum(rng.normal(0, 0.25, (n, 5)), axis=0) * np.array([0.4, 0.4, 0.4, 1.0, 1.0])
    noise_sigma = rng.uniform(2.0, 6.0)
    blur_sigma = rng.uniform(0.3, 1.2)
    # sensor noise: a few fields drawn once per video, one picked per frame (drawing a fresh
    # 640x480x3 field per frame costs more than everything else here)
    noise_bank = rng.normal(0, noise_sigma, (6, h, w, 3)).astype(np.float32)
    for i in range(n):
        yaw, pitch, roll, ox, oy = _motion(kind, i / max(1, n - 1), params)
        yaw, pitch, roll, ox, oy = np.array([yaw, pitch, roll, ox, oy]) + tremor[i]
        r = flip @ rotation_from_angles(yaw, pitch, roll)
        t = flip @ np.array([ox, oy, 0.0]) + np.array([0.0, 0.0, distance_mm])
        hom = cam @ np.column_stack([r[:, 0], r[:, 1], t]) @ to_plane
        frame = cv2.warpPerspective(print_img, hom, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT,
                                    dst=background.copy())
        frame = cv2.GaussianBlur(frame, (0, 0), blur_sigma)
        frame = frame.astype(np.float32) + noise_bank[rng.integers(len(noise_bank))]
        yield i / fps, np.clip(frame, 0, 255).astype(np.uint8)
