"""MTCNN face detection (facenet-pytorch, its shipped weights) returning typed detections.

``FaceDetector.detect(image)`` always returns a list (``[]`` when there is no face), largest
face first, each with its box, confidence and the 5 landmarks in MTCNN's order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from faceapp.device import resolve_device
from faceapp import runtime
from faceapp.errors import WeightsError
from faceapp.runtime.onnx_mtcnn import refine as refine_boxes
from faceapp.types import BBox, Detection, Landmarks

log = logging.getLogger(__name__)


class FaceDetector:
    """Finds faces with MTCNN.

    ``min_face_size`` is the smallest face (pixels) the image pyramid looks for: smaller is
    slower. ``thresholds`` are MTCNN's three stage confidences.
    """

    def __init__(
        self,
        *,
        device: str = "auto",
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        min_score: float = 0.0,
    ) -> None:
        from faceapp import runtime

        self.min_score = float(min_score)
        self.thresholds = [float(t) for t in thresholds]
        self._lock = threading.Lock()
        self.backend = runtime.backend(device)
        if self.backend == "onnx":  # on the CPU (and always in the installers): ONNX Runtime
            from faceapp.runtime.onnx_mtcnn import OnnxMTCNN

            self.device = runtime.onnx_device(device)
            mtcnn = runtime.onnx_or_torch(
                lambda: OnnxMTCNN(min_face_size=int(min_face_size), thresholds=list(thresholds)), "MTCNN")
            if mtcnn is not None:
                self._mtcnn = mtcnn
                self._run_onet = lambda crops: OnnxMTCNN._run(mtcnn.onet, crops)  # refine's network
                return
            self.backend = "torch"
        runtime.torchvision_shim.install()  # torch's CPU build has no torchvision: a stand-in NMS
        try:
            from facenet_pytorch import MTCNN
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise WeightsError(f"the face detector (facenet-pytorch) is not installed: {exc}") from None
        self.device = resolve_device(device)
        try:
            self._mtcnn = MTCNN(
                keep_all=True,
                select_largest=True,
                min_face_size=int(min_face_size),
                thresholds=list(thresholds),
                post_process=False,
                device=self.device,
            ).eval()
        except (OSError, RuntimeError) as exc:
            raise WeightsError(f"the MTCNN weights could not be loaded: {exc}") from None
        import torch

        def run_onet(crops):  # refine's network
            return [t.cpu().numpy() for t in self._mtcnn.onet(torch.from_numpy(crops).to(self.device))]

        self._run_onet = run_onet

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in one RGB uint8 image (H, W, 3), largest first; ``[]`` when there is none."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Faces in several images. Images of equal size run as one batch; others one by one."""
        if not images:
            return []
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            return [self.detect(im) for im in images]
        batch = np.stack([np.ascontiguousarray(im, dtype=np.uint8) for im in images])
        from faceapp import runtime

        with self._lock, runtime.inference_mode(self.backend):
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
        return [self._convert(b, p, pt) for b, p, pt in zip(boxes, probs, points, strict=True)]

    def refine(self, image: np.ndarray, previous: Sequence[Detection]) -> list[Detection]:
        """The faces at ``previous`` boxes (e.g. the last video frame's faces) in ``image``, by
        MTCNN's last network alone (:func:`faceapp.runtime.onnx_mtcnn.refine`): each box is
        re-cropped, scored, regressed and given new landmarks, 2 to 5 ms a frame here instead
        of a whole detection. A box whose face is gone (score at most the last stage's threshold)
        gives nothing; the result is largest first, as :meth:`detect`'s."""
        if not previous:
            return []
        boxes = np.array([[d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2] for d in previous], dtype=np.float32)
        image = np.ascontiguousarray(image, dtype=np.uint8)
        with self._lock, runtime.inference_mode(self.backend):
            found, points = refine_boxes(self._run_onet, image, boxes, self.thresholds[2])
        if len(found) == 0:
            return []
        return self._convert(found[:, :4], found[:, 4], points)

    def _convert(self, boxes, probs, points) -> list[Detection]:
        # facenet-pytorch gives None for no face, and object arrays under numpy 2.
        if boxes is None or probs is None or points is None:
            return []
        boxes = np.asarray(list(boxes), dtype=np.float32).reshape(-1, 4)
        probs = np.asarray(list(probs), dtype=np.float32).reshape(-1)
        points = np.asarray(list(points), dtype=np.float32).reshape(-1, 5, 2)
        out = [
            Detection(BBox(*map(float, b)), float(s), Landmarks(pt))
            for b, s, pt in zip(boxes, probs, points, strict=True)
            if np.isfinite(b).all() and s >= self.min_score
        ]
        out.sort(key=lambda d: d.bbox.area, reverse=True)
        return suppress_nested(out)


def _overlap_of_smaller(a: Detection, b: Detection) -> float:
    """Intersection area over the smaller box's area (1.0 when one box lies inside the other)."""
    ix = max(0.0, min(a.bbox.x2, b.bbox.x2) - max(a.bbox.x1, b.bbox.x1))
    iy = max(0.0, min(a.bbox.y2, b.bbox.y2) - max(a.bbox.y1, b.bbox.y1))
    smaller = min(a.bbox.area, b.bbox.area)
    return ix * iy / smaller if smaller > 0 else 0.0


def suppress_nested(detections: list[Detection], max_overlap: float = 0.6) -> list[Detection]:
    """Drop a detection that mostly lies inside a larger one: MTCNN's IoU-based NMS can leave
    two boxes on one face (one nested in the other, e.g. on blurred faces), which would
    otherwise count as 'several people'. Input is largest first; order is kept."""
    kept: list[Detection] = []
    for d in detections:
        if all(_overlap_of_smaller(d, k) < max_overlap for k in kept):
            kept.append(d)
    return kept
