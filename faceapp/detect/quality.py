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

    @classmethod
    def from_settings(cls, settings) -> QualityLimits:
        return cls(
            min_face_size=settings.min_face_size,
            min_score=settings.min_detection_score,
            min_brightness=settings.min_brightness,
            max_brightness=settings.max_brightness,
            min_sharpness=settings.min_sharpness,
        )


def _central(gray: np.ndarray) -> np.ndarray:
    # The middle of the aligned chip: the face itself, without hair and background.
    h, w = gray.shape
    return gray[h // 5 : h - h // 10, w // 5 : w - w // 5]


def brightness(chip: np.ndarray) -> float:
    """Mean luma (0..255) of the central part of an RGB chip."""
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(_central(gray).mean())


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
