"""Presentation-attack detection over an attempt: the per-frame live scores of one visitor's
attempt at the door, and the rule that turns them into a verdict.

The rule (measured in docs/antispoof.md): an attempt is live when the **median** live score of its
frames is at or above the threshold, once at least ``min_frames`` frames were scored. The median
lets a few odd frames (motion blur, a face half out of the picture) pass without letting a screen
or a print through: those score low on most frames.

:class:`AntiSpoofAttempt` is the per-frame hook for the door and the liveness session::

    check = AntiSpoofAttempt(antispoof)            # one per attempt (antispoof_factory(settings)())
    for result in frames:                          # faceapp.pipeline.FrameResult
        check.feed_result(result)                  # scores the largest face (as LivenessSession does)
        if check.verdict is PadVerdict.SPOOF: ...  # deny with Decision.SPOOF
    grant only if check.verdict is PadVerdict.LIVE (and the challenge passed, and the identity agreed)

The door (:class:`faceapp.door.DoorMachine`) does not feed it every frame: it scores only the frames
that count for the identity being decided (the agreeing run of one usable face, with ``feed``) and
starts a new attempt whenever that run starts again (another reading, several faces, a poor face, no
face). Otherwise a live face held beside a photo, or a blurry live face before it, would lend the
photo its live scores.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

import numpy as np


class PadVerdict(str, enum.Enum):
    PENDING = "pending"  # fewer than min_frames frames scored
    LIVE = "live"
    SPOOF = "spoof"


def attempt_is_live(scores: Sequence[float], threshold: float, *, min_frames: int = 1) -> bool:
    """True when at least ``min_frames`` scores were given and their median is >= ``threshold``."""
    if len(scores) < max(1, int(min_frames)):
        return False
    return float(np.median(np.asarray(scores, np.float64))) >= float(threshold)


class AntiSpoofAttempt:
    """The live scores of one attempt (see the module docstring). ``antispoof``: an
    :class:`faceapp.antispoof.AntiSpoof` (or anything with ``score(frame_rgb, bbox)`` and a
    ``threshold``); ``threshold`` overrides its threshold."""

    def __init__(self, antispoof, *, threshold: float | None = None, min_frames: int = 5) -> None:
        if min_frames < 1:
            raise ValueError(f"min_frames must be at least 1 (got {min_frames})")
        self.antispoof = antispoof
        self.threshold = float(antispoof.threshold if threshold is None else threshold)
        self.min_frames = int(min_frames)
        self.scores: list[float] = []

    def feed(self, frame_rgb: np.ndarray, bbox) -> float:
        """Score the face in ``bbox`` of this frame and keep the score; returns it."""
        score = float(self.antispoof.score(frame_rgb, bbox))
        self.scores.append(score)
        return score

    def feed_result(self, result) -> float | None:
        """Score the largest face of a :class:`faceapp.pipeline.FrameResult` (None: no face)."""
        faces = list(result.faces)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.observation.detection.bbox.area)
        return self.feed(result.frame, face.observation.detection.bbox)

    @property
    def median(self) -> float | None:
        return float(np.median(self.scores)) if self.scores else None

    @property
    def verdict(self) -> PadVerdict:
        if len(self.scores) < self.min_frames:
            return PadVerdict.PENDING
        return PadVerdict.LIVE if attempt_is_live(self.scores, self.threshold) else PadVerdict.SPOOF

    def detail(self) -> str:
        if not self.scores:
            return "anti-spoofing: no face scored"
        return (f"anti-spoofing: median live score {self.median:.3f} over {len(self.scores)} frames "
                f"(threshold {self.threshold:.2f})")


def antispoof_factory(settings, *, antispoof=None) -> Callable[[], AntiSpoofAttempt] | None:
    """A maker of one :class:`AntiSpoofAttempt` per door attempt for these settings, or None when
    the setting ``antispoof`` is off. The model (``antispoof``, default: loaded here once, on the
    settings' device) is shared by all attempts."""
    if not settings.antispoof:
        return None
    if antispoof is None:
        from faceapp.antispoof.model import AntiSpoof

        antispoof = AntiSpoof(device=settings.device)
    threshold = settings.antispoof_threshold
    min_frames = int(settings.antispoof_min_frames)

    def make() -> AntiSpoofAttempt:
        return AntiSpoofAttempt(antispoof, threshold=threshold, min_frames=min_frames)

    return make
