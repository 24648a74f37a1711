"""Quality checks that gate enrollment and decisions: face size, detector confidence,
brightness and sharpness. ``assess`` measures; it never raises for a poor face."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceapp.types import AlignedFace, QualityIssue, QualityReport


@dataclass(frozen=True)
class QualityLimits:
    """Limits from the settings (see :class:`faceapp.config.Settings` for units and meaning)."""

    min_face_size: float = 60.0
    min_score: float = 0.90
    min_brightness: float = 45.0
    max_brightness: float = 225.0
    min_sharpness: float = 12.0
    normalize: bool = True  # brighten a dim face (normalize_brightness) before judging it
    min_raw_brightness: float = 12.0  # darker than this, a face is refused without brightening

    @classmethod
    def from_settings(cls, settings) -> QualityLimits:
        return cls(
            min_face_size=settings.min_face_size,
            min_score=settings.min_detection_score,
            min_brightness=settings.min_brightness,
            max_brightness=settings.max_brightness,
            min_sharpness=settings.min_sharpness,
            normalize=settings.brightness_normalize,
            min_raw_brightness=settings.min_raw_brightness,
        )


def _central(gray: np.ndarray) -> np.ndarray:
    # The middle of the aligned chip: the face itself, without hair and background.
    h, w = gray.shape
    return gray[h // 5 : h - h // 10, w // 5 : w - w // 5]


def brightness(chip: np.ndarray) -> float:
    """Mean luma (0..255) of the central part of an RGB chip."""
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(_central(gray).mean())


NORMALIZED_LUMA = 100.0  # what a dim face is brightened to (central mean luma; LFW faces: about 100-120)


def normalize_brightness(chip: np.ndarray, limits: QualityLimits) -> np.ndarray:
    """A dim aligned face brightened by a gamma curve so that its central mean luma is about
    :data:`NORMALIZED_LUMA`; the chip unchanged when it is bright enough (at least
    ``min_brightness``), when ``normalize`` is off, or when it is too dark to have anything to
    brighten (under ``min_raw_brightness``: it stays TOO_DARK). A gamma curve keeps the order of
    the grey levels (no new edges, unlike a local equalisation), so the encoder sees the same
    face, lit better. Faces bright enough are never touched."""
    if not limits.normalize:
        return chip
    level = brightness(chip)
    if level >= limits.min_brightness or level < max(limits.min_raw_brightness, 1.0):
        return chip
    gamma, out = 1.0, chip
    for _ in range(3):  # the mean of a power is not the power of the mean: refine the exponent
        gamma *= np.log(NORMALIZED_LUMA / 255.0) / np.log(max(level, 1.0) / 255.0)
        lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)
        out = cv2.LUT(chip, lut)
        level = brightness(out)
        if abs(level - NORMALIZED_LUMA) < 3.0:
            break
    return np.ascontiguousarray(out)


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the central part of an RGB chip (higher is sharper)."""
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(_central(gray), cv2.CV_64F).var())


def assess(face: AlignedFace, limits: QualityLimits) -> QualityReport:
    """Measure one aligned face against the limits."""
    det = face.detection
    size = det.size
    bright = brightness(face.image)
    sharp = sharpness(face.image)
    issues: list[QualityIssue] = []
    if size < limits.min_face_size:
        issues.append(QualityIssue.TOO_SMALL)
    if det.score < limits.min_score:
        issues.append(QualityIssue.LOW_CONFIDENCE)
    if bright < limits.min_brightness:
        issues.append(QualityIssue.TOO_DARK)
    elif bright > limits.max_brightness:
        issues.append(QualityIssue.TOO_BRIGHT)
    if sharp < limits.min_sharpness:
        issues.append(QualityIssue.BLURRY)
    return QualityReport(face_size=size, brightness=bright, sharpness=sharp, score=det.score, issues=tuple(issues))
