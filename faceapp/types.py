"""Typed values that flow through faceapp: detections, aligned faces, results, decisions.

Coordinates are pixels of the image they came from, x to the right, y down. Distances are
squared Euclidean distances between unit-length encodings, so they lie in [0, 4].
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


class Decision(str, enum.Enum):
    """The outcome of a verification, identification or door attempt."""

    MATCH = "match"  # verify: the claimed person; identify: a known person
    NO_MATCH = "no_match"  # verify: the face is not the claimed person
    NOT_RECOGNIZED = "not_recognized"  # identify: nobody enrolled is close enough
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    LOW_QUALITY = "low_quality"
    SPOOF = "spoof"  # liveness: the face moved as one plane (a photo or a screen)
    TIMEOUT = "timeout"
    LIVENESS_TIMEOUT = "liveness_timeout"  # liveness: the challenge (blink / turn) was not met in time
    LIVENESS_WRONG_MOVE = "liveness_wrong_move"  # liveness: the head turned the other way than asked
    LIVENESS_FACE_LOST = "liveness_face_lost"  # liveness: the face left, or another took its place
    LOG_UNAVAILABLE = "log_unavailable"  # door: a grant withheld because its event could not be committed

    @property
    def granted(self) -> bool:
        return self is Decision.MATCH


class QualityIssue(str, enum.Enum):
    """Why a face is not good enough to enroll or to decide on."""

    TOO_SMALL = "too_small"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    BLURRY = "blurry"
    LOW_CONFIDENCE = "low_confidence"
    EYES_CLOSED = "eyes_closed"  # eye aspect ratio of the 68 landmarks below the limit
    HEAD_TURNED = "head_turned"  # yaw or pitch from the 68 landmarks beyond the limit


@dataclass(frozen=True)
class BBox:
    """An axis-aligned box: (x1, y1) top-left, (x2, y2) bottom-right, in pixels."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, factor: float) -> BBox:
        return BBox(self.x1 * factor, self.y1 * factor, self.x2 * factor, self.y2 * factor)


@dataclass(frozen=True)
class Landmarks:
    """Five facial points in MTCNN's order, as seen in the image (not the person's left/right):
    eye on the image's left, eye on the image's right, nose tip, mouth corner on the image's
    left, mouth corner on the image's right. ``points`` is a (5, 2) float32 array of (x, y)."""

    points: np.ndarray

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float32).reshape(5, 2)
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.points[1] - self.points[0]))

    def scaled(self, factor: float) -> Landmarks:
        return Landmarks(self.points * factor)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Landmarks) and np.array_equal(self.points, other.points)

    def __hash__(self) -> int:
        return hash(self.points.tobytes())


@dataclass(frozen=True)
class Detection:
    """One face found in an image: its box, the detector's confidence (0..1) and 5 landmarks."""

    bbox: BBox
    score: float
    landmarks: Landmarks

    @property
    def size(self) -> float:
        """The face's size in pixels: the shorter side of its box."""
        return min(self.bbox.width, self.bbox.height)


@dataclass(frozen=True)
class QualityReport:
    """Measured quality of one face. ``issues`` is empty when the face is good enough."""

    face_size: float  # pixels, shorter side of the box
    brightness: float  # mean luma of the aligned face, 0..255
    sharpness: float  # variance of the Laplacian of the aligned face (higher is sharper)
    score: float  # detector confidence
    issues: tuple[QualityIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues

    def describe(self) -> str:
        if self.ok:
            return "good"
        return ", ".join(i.value.replace("_", " ") for i in self.issues)


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face warped onto the embedder's canonical template.

    ``image`` is an RGB uint8 array of the embedder's input size; ``matrix`` is the 2x3 affine
    matrix that maps source-image pixels into the aligned image."""

    image: np.ndarray
    detection: Detection
    matrix: np.ndarray


@dataclass(frozen=True)
class Candidate:
    """One enrolled person and their distance to a probe face."""

    name: str
    distance: float
    person_id: int | None = None


@dataclass(frozen=True)
class VerifyResult:
    """1:1 verification: is the face the claimed person? MATCH iff distance <= threshold."""

    decision: Decision
    claimed: str
    distance: float | None
    threshold: float
    quality: QualityReport | None = None

    @property
    def granted(self) -> bool:
        return self.decision.granted


@dataclass(frozen=True)
class IdentifyResult:
    """1:K recognition by the door's rule (:class:`faceapp.match.open_set.OpenSetRule`): the
    nearest enrolled person when within ``threshold`` -- the recognize threshold for a gallery
    of ``people`` people, never above tau -- and at least ``min_margin`` closer than the
    second-nearest; the top-k either way. Distances are squared L2 between unit encodings."""

    decision: Decision
    name: str | None
    distance: float | None  # to the nearest person
    threshold: float  # the threshold in force for this gallery size
    candidates: tuple[Candidate, ...] = ()
    quality: QualityReport | None = None
    people: int | None = None  # the gallery size the threshold was set for
    second: float | None = None  # distance to the second-nearest person
    min_margin: float = 0.0  # how much closer than the second-nearest the nearest must be
    ambiguous: bool = False  # within threshold, but not clear of the second-nearest by min_margin
    tau: float | None = None  # the 1:1 threshold, the cap of ``threshold``

    @property
    def granted(self) -> bool:
        return self.decision.granted

    @property
    def margin(self) -> float | None:
        """How much closer the nearest person is than the second-nearest (None without both)."""
        return None if self.distance is None or self.second is None else self.second - self.distance


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    created_at: datetime
    template_count: int = 0


@dataclass(frozen=True, eq=False)
class Template:
    """A stored encoding of one person made by one model, with the aligned face it came from."""

    id: int
    person_id: int
    person_name: str
    embedding: np.ndarray
    model_id: str
    quality: float
    created_at: datetime
    face_jpeg: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Event:
    """One logged decision."""

    id: int
    time: datetime
    kind: str  # "enroll", "verify", "identify", "door", "remove"
    decision: Decision | None
    claimed: str | None
    decided: str | None
    distance: float | None
    threshold: float | None
    detail: str = ""
