"""The embedding network on ONNX Runtime: normalised (N, 3, S, S) chips -> (N, dim) unit encodings.

The ONNX file is named after the spec's weights file (``<onnx dir>/<weights stem>.onnx``, e.g.
``dlib_resnet_v1.onnx``), so every spec on the same weights runs from one export: the flip
variant ``dlib-resnet-flip-v1`` differs from ``dlib-resnet-v1`` only in how its chips are fed.
The file carries, in its metadata, the sha256 of the PyTorch weights it was exported from; a
file made from other weights than the spec names is refused, so stored templates never mix
encodings of different weights.

A spec with ``flip_tta`` is applied here as on the torch backend: the network runs on the
chips and on their mirror images, and the encoding is ``normalise(e(chip) + e(mirrored chip))``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceapp import runtime


def onnx_file(spec, model_dir: Path | None = None) -> Path:
    """Where the ONNX export of ``spec``'s weights lives (shared by the specs on those weights)."""
    return (Path(model_dir) if model_dir is not None else runtime.onnx_dir()) / f"{Path(spec.file).stem}.onnx"


class OnnxEmbedNet:
    """Callable like the torch model: ``net(x)`` with x float32 (N, 3, S, S) -> (N, dim)."""

    def __init__(self, spec, model_dir: Path | None = None) -> None:
        self.session = runtime.checked_session(onnx_file(spec, model_dir), spec)
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        want = bool(getattr(spec, "flip_tta", False))
        in_graph = meta.get("flip_in_graph")  # the fused model mirrors each backbone's chip inside its graph
        if in_graph is not None and (in_graph == "1") != want:
            from faceapp.errors import WeightsError

            raise WeightsError(f"{onnx_file(spec, model_dir)} was exported {'with' if in_graph == '1' else 'without'} "
                               f"flip TTA, model {spec.model_id} runs {'with' if want else 'without'} it; rebuild it")
        self.flip_tta = want and in_graph is None

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.flip_tta:
            return self._run(x)
        both = self._run(np.concatenate([x, x[..., ::-1]]))  # (N, 3, H, W): reversing W mirrors the chips
        s = both[: len(x)] + both[len(x) :]  # one run over chips + mirrors (faster than two)
        return (s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)).astype(np.float32)
