"""The 68-point landmark network on ONNX Runtime: normalised (N, 3, S, S) crops -> (N, 68, 2)
points in crop pixels (the installers have no torch; source installs run it on PyTorch).

The file (``<onnx dir>/<landmark model id>.onnx``) records the model id and the sha256 of the
PyTorch weights it was exported from (:func:`faceapp.runtime.export.export_landmarks`); a file
made from other weights than the spec names is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceapp import runtime


def onnx_file(model_id: str, model_dir: Path | None = None) -> Path:
    return (Path(model_dir) if model_dir is not None else runtime.onnx_dir()) / f"{model_id}.onnx"


class OnnxLandmarkNet:
    """Callable like :class:`faceapp.landmarks.model.LandmarkNet` in eval mode, on NumPy arrays."""

    def __init__(self, spec, model_dir: Path | None = None) -> None:
        self.session = runtime.checked_session(onnx_file(spec.model_id, model_dir), spec, kind="landmark weights")
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
