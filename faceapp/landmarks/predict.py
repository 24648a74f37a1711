"""68-point landmarks for a detected face: ``LandmarkPredictor().predict(image, detection)``.

The predictor crops the face around its MTCNN box exactly as in training (the spec's margin and
offset), runs the network, and maps the points back into the image. Qt-free and thread-safe
(one lock around the network), so the GUI can call it from its frame worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from faceapp.landmarks.geometry import apply_affine, crop_image, crop_matrix, invert_affine
from faceapp.landmarks.points import mirror_points
from faceapp.landmarks.spec import DEFAULT_MODEL, LandmarkSpec, load_landmark_spec
from faceapp.types import BBox, Detection

log = logging.getLogger(__name__)


def _box(face: Detection | BBox | Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(face, Detection):
        face = face.bbox
    if isinstance(face, BBox):
        return np.array([face.x1, face.y1, face.x2, face.y2], dtype=np.float64)
    box = np.asarray(face, dtype=np.float64).reshape(-1)
    if box.shape != (4,):
        raise ValueError(f"a face box is (x1, y1, x2, y2), got {box.shape}")
    return box


class LandmarkPredictor:
    """The shipped landmark CNN (``resources/models/landmarks_v1.*``) on one device.

    ``predict(image, face)``: ``image`` an RGB uint8 (H, W, 3) array, ``face`` a
    :class:`~faceapp.types.Detection`, a :class:`~faceapp.types.BBox` or ``(x1, y1, x2, y2)``;
    returns (68, 2) float32 image pixels in the iBUG order (:mod:`faceapp.landmarks.points`).
    Runs on PyTorch, or on ONNX Runtime where :func:`faceapp.runtime.backend` says so (the
    installers, which have no torch).
    """

    def __init__(
        self, *, model: str = DEFAULT_MODEL, device: str = "cpu", spec: LandmarkSpec | None = None, flip: bool = False
    ) -> None:
        from faceapp import runtime

        self.spec = spec or load_landmark_spec(model)
        self._lock = threading.Lock()
        self.flip = bool(flip)  # also run the mirror image and average (2x the time, ~7% lower error)
        self._mean = np.asarray(self.spec.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.backend = runtime.backend(device)
        if self.backend == "onnx":  # on the CPU (and always in the installers): ONNX Runtime
            from faceapp.runtime.onnx_landmarks import OnnxLandmarkNet

            self.device = runtime.onnx_device(device)
            self._net = runtime.onnx_or_torch(lambda: OnnxLandmarkNet(self.spec), f"landmark model {self.spec.model_id}")
            if self._net is not None:
                return
            self.backend = "torch"
        from faceapp.device import resolve_device
        from faceapp.landmarks.model import landmark_net

        self.device = resolve_device(device)
        state = self.spec.load_state_dict(map_location="cpu")
        try:
            self._net = landmark_net(state=state, width=self.spec.width).to(self.device)
        except RuntimeError as exc:
            from faceapp.errors import WeightsError

            raise WeightsError(f"landmark weights {self.spec.file} do not fit the network: {exc}") from None

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def crop(self, image: np.ndarray, face) -> tuple[np.ndarray, np.ndarray]:
        """(the network's input crop (S, S, 3) uint8, the 2x3 image->crop matrix)."""
        m = crop_matrix(_box(face), self.spec.input_size, margin=self.spec.crop_margin, shift_y=self.spec.crop_shift_y)
        return crop_image(image, m, self.spec.input_size), m

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 crops -> ``(N, 68, 2)`` points in crop pixels."""
        x = (np.asarray(crops).transpose(0, 3, 1, 2).astype(np.float32) - self._mean) / np.float32(self.spec.scale)
        if not self.flip:
            return self._run(x)
        both = self._run(np.concatenate([x, x[..., ::-1]]))
        n = len(x)
        return (both[:n] + mirror_points(both[n:], self.spec.input_size)) / 2

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Normalised ``(N, 3, S, S)`` float32 crops through the network (either runtime)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            if self.backend == "onnx":
                return self._net(x)
            import torch

            with torch.inference_mode():
                return self._net(torch.from_numpy(x).to(self.device)).cpu().numpy()

    def predict_many(self, image: np.ndarray, faces: Sequence) -> np.ndarray:
        """Landmarks of several faces of one image: ``(N, 68, 2)`` float32 (``(0, 68, 2)`` for none)."""
        if len(faces) == 0:
            return np.zeros((0, 68, 2), np.float32)
        crops, mats = zip(*(self.crop(image, f) for f in faces), strict=True)
        pts = self.predict_crops(np.stack(crops))
        back = invert_affine(np.stack(mats))
        return apply_affine(back, pts).astype(np.float32)

    def predict(self, image: np.ndarray, face) -> np.ndarray:
        """Landmarks of one face: (68, 2) float32 image pixels."""
        return self.predict_many(image, [face])[0]
