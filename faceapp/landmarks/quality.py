"""Quality checks from the 68 landmarks: eyes closed and head turned.

``assess_landmarks(points, image_size, limits)`` measures one face and returns the issues as
:class:`~faceapp.types.QualityIssue` members (``EYES_CLOSED``, ``HEAD_TURNED``), to be added to the
:class:`~faceapp.types.QualityReport` issues of :func:`faceapp.detect.quality.assess` by the caller.
It never raises for a poor face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceapp.landmarks.pose import HeadPose, eye_aspect_ratio, head_pose
from faceapp.types import QualityIssue


@dataclass(frozen=True)
class LandmarkLimits:
    """Limits from the settings (see :class:`faceapp.config.Settings` for units and meaning)."""

    min_eye_aspect_ratio: float = 0.15  # 0 = no eyes-closed check
    max_yaw_deg: float = 25.0
    max_pitch_deg: float = 20.0

    @classmethod
    def from_settings(cls, settings) -> LandmarkLimits:
        """The limits from the settings (whose ranges Settings.validate checks)."""
        settings.validate()
        return cls(
            min_eye_aspect_ratio=float(settings.min_eye_aspect_ratio),
            max_yaw_deg=float(settings.max_yaw_deg),
            max_pitch_deg=float(settings.max_pitch_deg),
        )


@dataclass(frozen=True)
class LandmarkQuality:
    """What the 68 landmarks say about one face."""

    eye_aspect_ratio: float
    pose: HeadPose
    issues: tuple[QualityIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues


def assess_landmarks(
    points: np.ndarray, image_size: tuple[int, int] | None = None, limits: LandmarkLimits | None = None
) -> LandmarkQuality:
    """Eye aspect ratio, head pose and the issues they raise for one face's 68 landmarks."""
    limits = limits or LandmarkLimits()
    ear = eye_aspect_ratio(points)
    pose = head_pose(points, image_size)
    issues: list[QualityIssue] = []
    if limits.min_eye_aspect_ratio > 0 and not ear >= limits.min_eye_aspect_ratio:
        issues.append(QualityIssue.EYES_CLOSED)
    if not (abs(pose.yaw) <= limits.max_yaw_deg and abs(pose.pitch) <= limits.max_pitch_deg):
        issues.append(QualityIssue.HEAD_TURNED)
    return LandmarkQuality(ear, pose, tuple(issues))
