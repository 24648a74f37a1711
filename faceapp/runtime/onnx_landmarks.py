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
from faceapp.errors import WeightsError


def onnx_file(model_id: str, model_dir: Path | None = None) -> Path:
    return (Path(model_dir) if model_dir is not None else runtime.onnx_dir()) / f"{model_id}.onnx"


class OnnxLandmarkNet:
    """Callable like :class:`faceapp.landmarks.model.LandmarkNet` in eval mode, on NumPy arrays."""

    def __init__(self, spec, model_dir: Path | None = None) -> None:
        path = onnx_file(spec.model_id, model_dir)
        self.session = runtime.onnx_session(path)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("source_sha256") != spec.sha256 or meta.get("model_id") != spec.model_id:
            raise WeightsError(
                f"{path} was exported from other landmark weights (model {meta.get('model_id')!r}, sha256 "
                f"{meta.get('source_sha256', '')[:12]}...) than {spec.model_id} ({spec.sha256[:12]}...); rebuild it"
            )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
