"""The face pipeline: image -> detect -> align -> quality -> embed (-> match).

:class:`FaceEngine` owns the detector and the embedder (both loaded on first use) and turns an
image into :class:`FaceObservation` values. :class:`FacePipeline` adds a gallery and per-stage
timings for live frames: ``process(frame)`` for one frame, ``run(frames, is_cancelled)`` as a
generator that a CLI loops over and the GUI wraps in a worker thread. A pipeline serves one
stream: by default it tracks the faces between frames (:class:`faceapp.tracking.FaceTracker`:
a full scan at least every ``full_every`` frames, only the region of the last faces in between),
and always aligns and embeds from the current full-resolution frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from faceapp import runtime
from faceapp.config import Settings
from faceapp.detect.align import align_face
from faceapp.detect.edges import detect_with_edges
from faceapp.detect.quality import QualityLimits, assess, normalize_brightness
from faceapp.embed.weights import WeightsSpec, load_spec
from faceapp.match.gallery import Gallery
from faceapp.types import AlignedFace, Candidate, Detection, QualityReport

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class FaceObservation:
    """One face of an image, aligned, measured and encoded."""

    aligned: AlignedFace
    quality: QualityReport
    embedding: np.ndarray  # (dim,) float32, unit length

    @property
    def detection(self) -> Detection:
        return self.aligned.detection


class FaceEngine:
    """Detector + aligner + quality + embedder for one model, loaded lazily and thread-safely."""

    def __init__(self, settings: Settings | None = None, *, spec: WeightsSpec | None = None) -> None:
        self.settings = settings or Settings()
        runtime.apply_threads(self.settings.threads)  # before any network is loaded
        self.spec = spec or load_spec(self.settings.model)
        self.limits = QualityLimits.from_settings(self.settings)
        self._detector = None
        self._embedder = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def threshold(self) -> float:
        """The decision threshold in force: the setting if it was set for this model, else the
        model's calibrated value (:meth:`faceapp.config.Settings.threshold_for`)."""
        t = self.settings.threshold_for(self.spec.model_id)
        return t if t is not None else float(self.spec.threshold)

    @property
    def detector(self):
        with self._lock:
            if self._detector is None:
                from faceapp.detect.detector import FaceDetector

                self._detector = FaceDetector(device=self.settings.device, min_face_size=self.detector_min_face)
            return self._detector

    @property
    def detector_min_face(self) -> int:
        """The smallest face (pixels) the detector looks for: half the quality gate's minimum
        (the floor of :meth:`relevant`), at least 20."""
        return max(20, self.settings.min_face_size // 2)

    @property
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from faceapp.embed.embedder import Embedder

                self._embedder = Embedder(self.spec, device=self.settings.device)
            return self._embedder

    def warm_up(self) -> None:
        """Load both networks now (the GUI does this in the background at start-up)."""
        _ = self.detector, self.embedder

    def detect(self, image: np.ndarray, *, still: bool = False) -> list[Detection]:
        """The faces of one RGB image, largest first. A face at the picture's edge is detected
        again in a padded copy (its landmarks are wrong otherwise), and so is a ``still`` photo
        (enrollment, a photo to verify) in which no face was found
        (:func:`faceapp.detect.edges.detect_with_edges`); live frames never get that retry."""
        return detect_with_edges(self.detector.detect, image, still=still)

    def refine(self, image: np.ndarray, previous: list[Detection]) -> list[Detection] | None:
        """The faces at ``previous`` boxes in this ``image`` by the detector's last stage alone
        (:meth:`faceapp.detect.detector.FaceDetector.refine`: the tracker's cheap step between
        scans); None when the detector cannot do that (then the tracker detects in the region)."""
        refine = getattr(self.detector, "refine", None)
        return refine(image, previous) if refine is not None else None

    def align(self, image: np.ndarray, detection: Detection) -> AlignedFace:
        """The embedder's chip of one face; a dim face is brightened first
        (:func:`faceapp.detect.quality.normalize_brightness`), so the quality gate and the encoder
        both see the brightened face."""
        face = align_face(image, detection, self.spec.template, self.spec.input_size, self.spec.border)
        chip = normalize_brightness(face.image, self.limits)
        if chip is face.image:
            return face
        return AlignedFace(image=chip, detection=face.detection, matrix=face.matrix)

    def relevant(self, detections: list[Detection]) -> list[Detection]:
        """Faces that count as 'in frame', before anything counts them: at least half the minimum
        face size, and a detector confidence of at least ``min_detection_score`` (a low-score
        'face' on hair, a neck or a plant is not a second person). Tiny faces far in the background
        neither block a decision as 'several people' nor get matched. When no face reaches the
        confidence, the largest one is kept, so that its quality says LOW_CONFIDENCE (look at the
        camera) instead of 'no face'. Input and output: largest first."""
        floor = self.settings.min_face_size / 2
        sized = [d for d in detections if d.size >= floor]
        confident = [d for d in sized if d.score >= self.settings.min_detection_score]
        return confident if confident else sized[:1]

    def observe(self, image: np.ndarray, detections: list[Detection] | None = None) -> list[FaceObservation]:
        """Align, assess and embed the given detections (default: every relevant face)."""
        if detections is None:
            detections = self.relevant(self.detect(image))
        aligned = [self.align(image, d) for d in detections]
        if not aligned:
            return []
        embeddings = self.embedder.embed([a.image for a in aligned])
        return [
            FaceObservation(a, assess(a, self.limits), e)
            for a, e in zip(aligned, embeddings, strict=True)
        ]


@dataclass(frozen=True)
class FaceResult:
    """One face in a live frame and its nearest people (``candidates``, closest first). Who it
    is, is decided by the 1:K rule (``FaceService.recognize``, the door's ``OpenSetRule``),
    never by ``threshold`` (tau) alone."""

    observation: FaceObservation
    candidates: tuple[Candidate, ...]
    threshold: float


@dataclass(frozen=True, eq=False)
class FrameResult:
    """Everything the live view needs about one frame; ``timings`` are milliseconds per stage."""

    index: int
    frame: np.ndarray
    faces: tuple[FaceResult, ...]
    timings: dict[str, float] = field(default_factory=dict)
    all_detections: tuple[Detection, ...] = ()
    gallery_size: int | None = None  # people in the gallery the faces were matched against (1:K threshold)


class FacePipeline:
    """Per-frame processing against a gallery supplied by ``gallery_provider`` (called per frame,
    so a gallery refreshed by the store shows up at once). ``track``: follow the faces between
    frames (see :mod:`faceapp.tracking`; a new face is found within ``full_every`` frames);
    off, every frame is scanned whole at full resolution."""

    def __init__(self, engine: FaceEngine, gallery_provider: Callable[[], Gallery], *, top_k: int = 3,
                 track: bool = True, full_every: int = 10) -> None:
        self.engine = engine
        self.gallery_provider = gallery_provider
        self.top_k = top_k
        self.tracker = None
        if track:
            from faceapp.tracking import FaceTracker

            self.tracker = FaceTracker(engine.detect, detector_min_face=engine.detector_min_face,
                                       min_face=engine.settings.min_face_size / 2, full_every=full_every,
                                       refine=engine.refine)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """This frame's faces: through the tracker, or a full scan when tracking is off."""
        return self.tracker.detect(frame) if self.tracker is not None else self.engine.detect(frame)

    def process(self, frame: np.ndarray, index: int = 0, *, capture_ms: float = 0.0) -> FrameResult:
        timings = {"capture": capture_ms}
        t0 = time.perf_counter()
        detections = self.detect(frame)
        t1 = time.perf_counter()
        relevant = self.engine.relevant(detections)
        aligned = [self.engine.align(frame, d) for d in relevant]
        t2 = time.perf_counter()
        embeddings = self.engine.embedder.embed([a.image for a in aligned]) if aligned else np.empty((0, 0))
        t3 = time.perf_counter()
        gallery = self.gallery_provider()
        threshold = self.engine.threshold
        faces = []
        for a, e in zip(aligned, embeddings, strict=True):
            obs = FaceObservation(a, assess(a, self.engine.limits), e)
            # at least the two nearest people, whatever top_k: the recognize margin (nearest vs
            # second-nearest) needs the second (services.identify_probe does the same)
            faces.append(FaceResult(obs, tuple(gallery.nearest(e, max(2, self.top_k))), threshold))
        t4 = time.perf_counter()
        timings.update(
            detect=(t1 - t0) * 1e3, align=(t2 - t1) * 1e3, embed=(t3 - t2) * 1e3, match=(t4 - t3) * 1e3
        )
        people = len(gallery.people)
        return FrameResult(index, frame, tuple(faces), timings, tuple(detections), gallery_size=people)

    def run(
        self,
        frames: Iterable[np.ndarray],
        is_cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[FrameResult]:
        """Process frames until they end or ``is_cancelled()`` is true; yields one result per frame."""
        it = iter(frames)
        index = 0
        if self.tracker is not None:
            self.tracker.reset()  # a new stream: its first frame is scanned
        while not is_cancelled():
            t0 = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                return
            capture_ms = (time.perf_counter() - t0) * 1e3
            yield self.process(frame, index, capture_ms=capture_ms)
            index += 1
