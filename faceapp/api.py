"""The small public facade of faceapp: seven verbs that read like sentences.

>>> import faceapp
>>> faceapp.enroll("alice", "alice.jpg")                 # one photo is enough
>>> faceapp.verify("door_cam.jpg", "alice")              # 1:1
VerifyResult(decision=<Decision.MATCH: 'match'>, claimed='alice', distance=0.21, threshold=0.36, ...)
>>> faceapp.identify("door_cam.jpg").name                # 1:K
'alice'

Images are paths, encoded bytes, PIL images or RGB arrays. Distances are squared L2 distances
between unit-length 128-d encodings (0 = identical, 4 = opposite); in ``verify`` a face matches
when its distance is at most the threshold (the model's calibrated value unless you pass one).
``identify`` decides as the door does: the threshold for the gallery's size (lower for more
people, so that a stranger is seldom taken for *someone*; never above tau) and a margin to the
second-nearest person (``settings.recognize_far``, ``settings.recognize_margin``).
The module-level verbs share one :class:`FaceApp` built from the user's settings; build your
own ``FaceApp(settings)`` for another database or threshold.
"""

from __future__ import annotations

import threading

import numpy as np

from faceapp.config import Settings, load_settings
from faceapp.imageio import ImageSource
from faceapp.imageio import load_image as _load_image
from faceapp.services import EnrollResult, FaceService
from faceapp.types import Detection, IdentifyResult, VerifyResult

__all__ = ["FaceApp", "load_image", "detect_faces", "embed_faces", "enroll", "verify", "identify", "remove"]


def load_image(source: ImageSource, *, max_side: int | None = 1600) -> np.ndarray:
    """Load an image as an RGB uint8 array (H, W, 3): EXIF rotation applied, any mode converted,
    downscaled so the longer side is at most ``max_side`` pixels. Raises ImageError."""
    return _load_image(source, max_side=max_side)


class FaceApp:
    """The verbs bound to one settings object (database, model, threshold, device)."""

    def __init__(self, settings: Settings | None = None, *, service: FaceService | None = None) -> None:
        """``service``: an existing :class:`FaceService` to use (its settings win)."""
        self.settings = service.settings if service is not None else settings or load_settings()
        self._service: FaceService | None = service

    @property
    def service(self) -> FaceService:
        if self._service is None:
            self._service = FaceService(self.settings)
        return self._service

    def detect_faces(self, image: ImageSource) -> list[Detection]:
        """Every face in the image (box, confidence 0..1, 5 landmarks), largest first; [] if none."""
        img = load_image(image, max_side=self.settings.max_image_side)
        return self.service.engine.detect(img, still=True)

    def embed_faces(self, image: ImageSource, detections: list[Detection] | None = None) -> np.ndarray:
        """128-d unit-length encodings (N, 128) float32 of the given faces (default: all found)."""
        img = load_image(image, max_side=self.settings.max_image_side)
        engine = self.service.engine
        dets = engine.detect(img, still=True) if detections is None else detections
        if not dets:
            return np.empty((0, engine.spec.embedding_dim), dtype=np.float32)
        return engine.embedder.embed([engine.align(img, d).image for d in dets])

    def enroll(self, name: str, image: ImageSource, *, largest: bool = False, force: bool = False) -> EnrollResult:
        """Enroll ``name`` from one photo with exactly one face (or the largest with ``largest``)."""
        return self.service.enroll(name, image, largest=largest, force=force)

    def verify(self, image: ImageSource, name: str, *, threshold: float | None = None, largest: bool = False) -> VerifyResult:
        """Is the face in ``image`` the enrolled ``name``? MATCH iff distance <= threshold."""
        return self.service.verify(name, image, threshold=threshold, largest=largest)

    def identify(
        self, image: ImageSource, *, threshold: float | None = None, top_k: int | None = None, largest: bool = False
    ) -> IdentifyResult:
        """Who is this? The nearest enrolled person when within the recognize threshold for the
        gallery's size (``threshold``: tau, its cap) and clear of the second-nearest by the
        margin, else NOT_RECOGNIZED; plus the top-k. The result carries the threshold in force,
        the gallery size and the margin."""
        return self.service.identify(image, threshold=threshold, top_k=top_k, largest=largest)

    def remove(self, name: str) -> int:
        """Remove a person and all of their data; returns the number of templates removed."""
        return self.service.remove(name)

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None


_default: FaceApp | None = None
_default_lock = threading.Lock()


def _app() -> FaceApp:
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceApp()
        return _default


def detect_faces(image: ImageSource) -> list[Detection]:
    """Every face in the image, largest first; [] when there is none."""
    return _app().detect_faces(image)


def embed_faces(image: ImageSource, detections: list[Detection] | None = None) -> np.ndarray:
    """(N, 128) float32 unit-length encodings of the faces in the image."""
    return _app().embed_faces(image, detections)


def enroll(name: str, image: ImageSource, *, largest: bool = False, force: bool = False) -> EnrollResult:
    """Enroll ``name`` from one photo."""
    return _app().enroll(name, image, largest=largest, force=force)


def verify(image: ImageSource, name: str, *, threshold: float | None = None, largest: bool = False) -> VerifyResult:
    """1:1 verification of ``image`` against the enrolled ``name``."""
    return _app().verify(image, name, threshold=threshold, largest=largest)


def identify(image: ImageSource, *, threshold: float | None = None, top_k: int | None = None, largest: bool = False) -> IdentifyResult:
    """1:K recognition of the face in ``image``, by the door's rule (see :meth:`FaceApp.identify`)."""
    return _app().identify(image, threshold=threshold, top_k=top_k, largest=largest)


def remove(name: str) -> int:
    """Remove a person and all of their data."""
    return _app().remove(name)
