"""The anti-spoofing networks (MiniFASNet V2 and V1SE) on ONNX Runtime: (N, 3, 80, 80) BGR crops,
pixel values 0..255 -> (N, 3) class probabilities (the softmax is part of the exported graph).

One file per weights file (``<onnx dir>/<weights stem>.onnx``, e.g. ``minifasnet_v1_v2_2p7.onnx``),
exported with its batch norms folded (:func:`faceapp.runtime.export.export_antispoof`), as the
torch backend runs it. Each file records the sha256 of the PyTorch weights it came from; a file
made from other weights than the spec names is refused.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from faceapp import runtime


def onnx_file(net_spec, model_dir: Path | None = None) -> Path:
    """Where the ONNX export of one ensemble member (a :class:`~faceapp.antispoof.model.NetworkSpec`) lives."""
    return (Path(model_dir) if model_dir is not None else runtime.onnx_dir()) / f"{Path(net_spec.file).stem}.onnx"


class OnnxAntiSpoofNet:
    """One ensemble member: ``net(x)`` with x float32 (N, 3, S, S) -> (N, classes) probabilities."""

    def __init__(self, spec, net_spec, model_dir: Path | None = None) -> None:
        made_from = SimpleNamespace(model_id=f"{spec.model_id} ({net_spec.name})", sha256=net_spec.sha256)
        self.session = runtime.checked_session(onnx_file(net_spec, model_dir), made_from,
                                               kind="anti-spoofing weights")
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
