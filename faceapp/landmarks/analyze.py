"""One call for the GUI and the services: a face's 68 landmarks and what they say about it.

    analyzer = LandmarkAnalyzer(settings)              # loads the landmark CNN on first use
    face = analyzer.analyze(image, detection)          # FaceLandmarks: points, EAR, pose, issues
    faces = analyzer.analyze_frame(frame_result)       # every face of a pipeline FrameResult

Qt-free and thread-safe (the predictor holds a lock), so a GUI worker thread can call it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from faceapp.landmarks.quality import LandmarkLimits, LandmarkQuality, assess_landmarks
from faceapp.types import Detection


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """One face's 68 landmarks (image pixels) and their quality verdict."""

    detection: Detection
    points: np.ndarray  # (68, 2) float32
    quality: LandmarkQuality


class LandmarkAnalyzer:
    """Landmarks + eyes-closed / head-turned checks with the limits of ``settings``."""

    def __init__(self, settings=None, *, predictor=None) -> None:
        from faceapp.config import Settings

        self.settings = settings or Settings()
        self.limits = LandmarkLimits.from_settings(self.settings)
        self._predictor = predictor
        self._lock = threading.Lock()

    @property
    def predictor(self):
        with self._lock:
            if self._predictor is None:
                from faceapp.landmarks.predict import LandmarkPredictor

                self._predictor = LandmarkPredictor(model=self.settings.landmark_model, device=self.settings.device)
            return self._predictor

    def set_settings(self, settings) -> None:
        """Take new limits (the GUI's saved settings); the loaded network is kept unless the
        landmark model or the device changed."""
        old, self.settings = self.settings, settings
        self.limits = LandmarkLimits.from_settings(settings)
        if (old.landmark_model, old.device) != (settings.landmark_model, settings.device):
            with self._lock:
                self._predictor = None

    def warm_up(self) -> None:
        """Load the network now (the GUI can do this at start-up, in the background)."""
        _ = self.predictor

    def analyze_many(self, image: np.ndarray, detections) -> tuple[FaceLandmarks, ...]:
        detections = list(detections)
        if not detections:
            return ()
        points = self.predictor.predict_many(image, detections)
        size = (image.shape[1], image.shape[0])
        return tuple(
            FaceLandmarks(d, p, assess_landmarks(p, size, self.limits)) for d, p in zip(detections, points, strict=True)
        )

    def analyze(self, image: np.ndarray, detection: Detection) -> FaceLandmarks:
        return self.analyze_many(image, [detection])[0]

    def analyze_frame(self, result) -> tuple[FaceLandmarks, ...]:
        """The faces of a :class:`faceapp.pipeline.FrameResult`, in its order."""
        return self.analyze_many(result.frame, [f.observation.detection for f in result.faces])
