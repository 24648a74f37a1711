"""The embedding network on ONNX Runtime: normalised (N, 3, S, S) chips -> (N, dim) unit encodings.

The ONNX file (``<onnx dir>/<model id>.onnx``) carries, in its metadata, the model id and the
sha256 of the PyTorch weights it was exported from; a file made from other weights than the
spec names is refused, so stored templates never mix encodings of different weights.

A spec with ``flip_tta`` is applied here as on the torch backend: the network runs on the
chips and on their mirror images, and the encoding is ``normalise(e(chip) + e(mirrored chip))``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceapp import runtime


def onnx_file(model_id: str, model_dir: Path | None = None) -> Path:
    return (Path(model_dir) if model_dir is not None else runtime.onnx_dir()) / f"{model_id}.onnx"


class OnnxEmbedNet:
    """Callable like the torch model: ``net(x)`` with x float32 (N, 3, S, S) -> (N, dim)."""

    def __init__(self, spec, model_dir: Path | None = None) -> None:
        self.session = runtime.checked_session(onnx_file(spec.model_id, model_dir), spec)
        self.input_name = self.session.get_inputs()[0].name
        self.flip_tta = bool(getattr(spec, "flip_tta", False))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.flip_tta:
            return self._run(x)
        s = self._run(x) + self._run(x[..., ::-1])  # (N, 3, H, W): reversing W mirrors the chips
        return (s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)).astype(np.float32)
