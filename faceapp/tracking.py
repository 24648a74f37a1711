"""Faster detection for live frames: detect on a downscaled frame, track faces between full scans.

MTCNN's cost grows with the pixels it scans and with how small a face it must find; a 1080p
frame takes four times a 640x480 one. Live frames repeat the last frame's faces, so
:class:`FaceTracker` mostly looks only where they were:

* **track frame**: each of the last frame's faces is looked for again at its last box by the
  detector's last stage alone (``refine``: MTCNN's ONet re-crops the box, scores it, moves it
  onto the face and gives new landmarks; 2 to 5 ms a frame on the 2-core CPU against 20 to 25 for a
  detection); a detector without that step scans the region around the last faces instead
  (each box widened by ``margin`` of its size on every side), downscaled so the smallest of
  those faces is about ``track_face_px`` pixels (never upscaled). A face not found again (it
  moved too far in one frame, turned away or left) is dropped; when none is left the frame is
  scanned (below);
* **scan frame**: the whole frame, downscaled only as far as the smallest face that counts
  (``min_face``, :meth:`faceapp.pipeline.FaceEngine.relevant`'s floor) still reaches the
  detector's own minimum (``detector_min_face``), so no face that counts is missed.

The rule (what the door may rely on): every ``full_every``-th frame is a scan (at most
``full_every - 1`` track frames in a row), and so are the first frame and any frame whose region
holds no face any more (the track is lost: that frame is scanned at once, so a face that moved
fast is found again in the same frame). A face entering the picture away from the tracked ones
is therefore found at the latest on its ``full_every``-th frame in the picture (the pipeline's
default, 10 frames: 0.4 s at 25 frames/s); until then the door sees only the tracked faces, and
a second person is counted from that scan on. Tracking only says *where* to look: every frame's boxes and landmarks come from
detection on that frame, mapped back to full-resolution coordinates (:func:`map_back`), and the
pipeline aligns and embeds each face from the full-resolution frame, so no decision uses a
stale face.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from faceapp.types import BBox, Detection, Landmarks

Detect = Callable[[np.ndarray], list[Detection]]
# the faces at the given previous detections in this frame; None: the detector has no such step
Refine = Callable[[np.ndarray, list[Detection]], "list[Detection] | None"]


def map_back(detection: Detection, scale: float | tuple[float, float],
             offset: tuple[float, float] = (0.0, 0.0)) -> Detection:
    """A detection found in a crop at ``offset`` (x, y, full-frame pixels) of the frame, resized
    by ``scale`` (one factor, or one per axis), in the full frame's coordinates: divide by the
    scale, add the offset."""
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    ox, oy = offset
    b = detection.bbox
    box = BBox(b.x1 / sx + ox, b.y1 / sy + oy, b.x2 / sx + ox, b.y2 / sy + oy)
    pts = detection.landmarks.points.astype(np.float64) / np.array([sx, sy]) + np.array([ox, oy])
    return Detection(box, detection.score, Landmarks(pts.astype(np.float32)))


def detect_scaled(detect: Detect, image: np.ndarray, scale: float,
                  region: tuple[int, int, int, int] | None = None) -> list[Detection]:
    """Detect in ``region`` (x1, y1, x2, y2; default the whole image) resized by ``scale``
    (at most 1; area interpolation, as a camera's own downscaling would), results in the full
    image's coordinates, largest first."""
    x1, y1, x2, y2 = region if region is not None else (0, 0, image.shape[1], image.shape[0])
    crop = image[y1:y2, x1:x2]
    axes = (1.0, 1.0)
    if scale < 1.0:
        w, h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
        axes = (w / crop.shape[1], h / crop.shape[0])  # each axis's exact factor after rounding the size
        crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    found = detect(np.ascontiguousarray(crop))
    out = [map_back(d, axes, (float(x1), float(y1))) for d in found]
    out.sort(key=lambda d: d.bbox.area, reverse=True)
    return out


@dataclass(frozen=True)
class TrackStep:
    """How one frame was detected: ``mode`` 'scan' or 'track', the ``scale`` used, the
    ``region`` scanned (full-frame pixels) and why a scan came (``reason``)."""

    mode: str
    scale: float
    region: tuple[int, int, int, int]
    reason: str = ""


class FaceTracker:
    """Per-stream detection state (one tracker per camera stream; see the module doc).

    ``detect``: the detector (``FaceEngine.detect``); ``detector_min_face``: the smallest face
    (pixels) it finds; ``min_face``: the smallest face that counts (smaller ones are not
    tracked, and a scan need not find them); ``full_every``: the longest run of frames between
    two scans; ``refine``: the detector's re-detection at given boxes (see the module doc)."""

    def __init__(self, detect: Detect, *, detector_min_face: float, min_face: float, full_every: int = 10,
                 margin: float = 0.5, track_face_px: float | None = None, refine: Refine | None = None) -> None:
        if full_every < 1:
            raise ValueError(f"full_every must be at least 1 (got {full_every})")
        self.detect_fn = detect
        self.refine_fn = refine
        self.detector_min_face = float(detector_min_face)
        self.min_face = float(min_face)
        self.full_every = int(full_every)
        self.margin = float(margin)
        # 1.6 times the detector's minimum: the face may shrink by a third (a step back) between
        # two frames and still be found; larger costs more (MTCNN's later stages dominate: about
        # 23 ms at 48 px against 30 ms at 60 px on the 2-core development CPU) and embeds no better
        self.track_face_px = float(track_face_px) if track_face_px else 1.6 * self.detector_min_face
        self.tracks: list[Detection] = []
        self._since_scan = 0
        self._shape: tuple[int, ...] = ()  # the size of the frame the tracks were found in
        self.last: TrackStep | None = None

    @property
    def scan_scale(self) -> float:
        """The scale of a scan: the smallest face that counts lands on the detector's minimum."""
        return min(1.0, self.detector_min_face / max(self.min_face, 1.0))

    def reset(self) -> None:
        """Forget the faces (a new stream): the next frame is scanned."""
        self.tracks, self._since_scan, self._shape, self.last = [], 0, (), None

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """This frame's faces (full-frame coordinates, largest first)."""
        reason = ""
        if not self.tracks:
            reason = "no track"
        elif frame.shape[:2] != self._shape:
            reason = "new frame size"  # a reopened camera or another video: the tracks are of another frame
        elif self._since_scan >= self.full_every - 1:
            reason = "cadence"
        else:
            region = self._region(frame.shape)
            found = self.refine_fn(frame, self.tracks) if self.refine_fn is not None else None
            scale = 1.0
            if found is None:  # no refine step: detect in the region around the faces
                scale = self.track_face_px / min(d.size for d in self.tracks)
                found = detect_scaled(self.detect_fn, frame, scale, region)
            self._since_scan += 1
            if found:
                self.last = TrackStep("track", min(1.0, scale), region)
                self._keep(found)
                return found
            reason = "lost"
        h, w = frame.shape[:2]
        found = detect_scaled(self.detect_fn, frame, self.scan_scale)
        self._since_scan = 0
        self._shape = frame.shape[:2]
        self.last = TrackStep("scan", self.scan_scale, (0, 0, w, h), reason)
        self._keep(found)
        return found

    def _keep(self, found: list[Detection]) -> None:
        self.tracks = [d for d in found if d.size >= self.min_face]

    def _region(self, shape) -> tuple[int, int, int, int]:
        """The tracked boxes' union, widened by ``margin`` of the largest box, clipped to the frame."""
        h, w = shape[:2]
        pad = self.margin * max(max(d.bbox.width, d.bbox.height) for d in self.tracks)
        x1 = min(d.bbox.x1 for d in self.tracks) - pad
        y1 = min(d.bbox.y1 for d in self.tracks) - pad
        x2 = max(d.bbox.x2 for d in self.tracks) + pad
        y2 = max(d.bbox.y2 for d in self.tracks) + pad
        return (max(0, int(x1)), max(0, int(y1)), min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2))))
