"""Batched inference: aligned RGB chips -> (N, dim) float32 unit-length encodings.

A spec with ``flip_tta`` encodes each chip as ``normalise(e(chip) + e(mirrored chip))``
(on the torch backend here, on ONNX Runtime in :class:`faceapp.runtime.onnx_embedder.OnnxEmbedNet`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from faceapp.device import resolve_device
from faceapp.embed import network
from faceapp.embed.weights import WeightsSpec
from faceapp.errors import WeightsError

log = logging.getLogger(__name__)


class Embedder:
    """Runs one model (described by its :class:`WeightsSpec`) on aligned faces."""

    def __init__(self, spec: WeightsSpec, *, device: str = "auto", batch_size: int = 32) -> None:
        from faceapp import runtime

        self.spec = spec
        self.batch_size = int(batch_size)
        self._lock = threading.Lock()
        self.backend = runtime.backend(device)
        if (spec.extra or {}).get("backbones"):  # a fused head: only beside the backbones it was trained on
            from faceapp.embed.fused import check_backbones

            check_backbones(spec.extra)
        if self.backend == "onnx":  # on the CPU (and always in the installers): ONNX Runtime
            from faceapp.runtime.onnx_embedder import OnnxEmbedNet

            self.device = runtime.onnx_device(device)
            self.model = runtime.onnx_or_torch(lambda: OnnxEmbedNet(spec), f"embedding model {spec.model_id}")
            if self.model is not None:
                self._mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, 3, 1, 1)
                return
            self.backend = "torch"
        import torch

        self.device = resolve_device(device)
        model = network.build(spec.architecture)
        self._model_flips = bool(getattr(model, "handles_flip", False))  # the fused model: inside the network
        if self._model_flips:
            model.flip_tta = spec.flip_tta
        state = spec.load_state_dict(map_location="cpu")
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"weights of {spec.model_id} do not fit architecture {spec.architecture}: {exc}") from None
        self.model = model.to(self.device).eval()
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Encode aligned chips (each input_size x input_size x 3, RGB uint8) -> (N, dim) float32."""
        n = len(chips)
        out = np.empty((n, self.spec.embedding_dim), dtype=np.float32)
        if n == 0:
            return out
        size = self.spec.input_size
        for chip in chips:
            if chip.shape != (size, size, 3):
                raise ValueError(f"aligned faces must be {size}x{size}x3 (got {chip.shape})")
        if self.backend == "onnx":
            scale = np.float32(self.spec.scale)
            with self._lock:
                for start in range(0, n, self.batch_size):
                    batch = np.stack(chips[start : start + self.batch_size]).transpose(0, 3, 1, 2)
                    x = (batch.astype(np.float32) - self._mean) / scale
                    out[start : start + len(batch)] = self.model(x)
            return out
        import torch

        with self._lock, torch.inference_mode():
            for start in range(0, n, self.batch_size):
                batch = np.stack(chips[start : start + self.batch_size])
                x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
                x = (x - self._mean) / self.spec.scale
                if self.spec.flip_tta and not self._model_flips:  # x is (N, 3, H, W): flipping W mirrors the chips
                    # one pass over chips + mirrors: ~20% faster on a CPU than two passes
                    both = self.model(torch.cat([x, x.flip(3)])).float()
                    emb = torch.nn.functional.normalize(both[: len(x)] + both[len(x) :], dim=1)
                else:
                    emb = self.model(x)
                out[start : start + len(batch)] = emb.float().cpu().numpy()
        return out
