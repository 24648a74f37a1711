"""The anti-spoofing model: its spec (``resources/models/minifasnet_v1.toml``) and :class:`AntiSpoof`,
which scores a face in a frame as live or a presentation attack (a print, a screen, a mask).

The model is an ensemble of two MiniFASNets (:mod:`faceapp.antispoof.network`) that see the same
face at two context scales (2.7x and 4.0x the detector's box, :mod:`faceapp.antispoof.crop`), as
80x80 BGR crops with pixel values 0..255. Each gives a softmax over 3 classes; the two are averaged
and the *live score* is the averaged probability of class 1 (live), 0..1.

Loading checks each weights file's sha256 first, then ``torch.load(..., weights_only=True)``.
The networks run on the runtime :func:`faceapp.runtime.backend` picks, as the detector's and the
embedder's do: PyTorch (source installs), or ONNX Runtime from their exports (the installers,
:mod:`faceapp.runtime.onnx_antispoof`; an export made from other weights is refused).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceapp import paths
from faceapp.antispoof.crop import CropBox, crop_face
from faceapp.errors import WeightsError
from faceapp.types import BBox

log = logging.getLogger(__name__)

DEFAULT_MODEL = "minifasnet-v1"


@dataclass(frozen=True)
class NetworkSpec:
    """One member of the ensemble: its weights file and the crop scale it was trained on."""

    name: str
    file: Path
    sha256: str
    scale: float
    source: str = ""
    source_sha256: str = ""

    def load_state_dict(self, map_location="cpu") -> dict:
        import torch

        from faceapp.embed.weights import sha256_of

        if not self.file.is_file():
            raise WeightsError(f"anti-spoofing weights are missing: {self.file}")
        digest = sha256_of(self.file)
        if digest != self.sha256:
            raise WeightsError(
                f"anti-spoofing weights {self.file} are corrupt or replaced (sha256 {digest[:12]}..., "
                f"expected {self.sha256[:12]}...)"
            )
        try:
            return torch.load(self.file, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises many kinds here
            raise WeightsError(f"anti-spoofing weights {self.file} cannot be loaded: {exc}") from None


@dataclass(frozen=True)
class AntiSpoofSpec:
    """The ensemble: networks, input geometry and colour, the live class and the threshold."""

    model_id: str
    networks: tuple[NetworkSpec, ...]
    input_size: int = 80
    channel_order: str = "BGR"
    pixel_scale: float = 1.0  # network input = pixel value (0..255) / pixel_scale
    live_class: int = 1
    threshold: float = 0.5  # live score at or above this: the frame reads as live
    card: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: Path) -> AntiSpoofSpec:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise WeightsError(f"anti-spoofing model spec {path} cannot be read: {exc}") from None
        known = {"model_id", "networks", "input_size", "channel_order", "pixel_scale", "live_class", "threshold", "card"}
        try:
            networks = tuple(
                NetworkSpec(
                    name=str(n["name"]),
                    file=path.parent / n["file"],
                    sha256=str(n["sha256"]).lower(),
                    scale=float(n["scale"]),
                    source=str(n.get("source", "")),
                    source_sha256=str(n.get("source_sha256", "")).lower(),
                )
                for n in data["networks"]
            )
            spec = cls(
                model_id=str(data["model_id"]),
                networks=networks,
                input_size=int(data["input_size"]),
                channel_order=str(data["channel_order"]).upper(),
                pixel_scale=float(data["pixel_scale"]),
                live_class=int(data["live_class"]),
                threshold=float(data["threshold"]),
                card=(path.parent / data["card"]) if data.get("card") else None,
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"anti-spoofing model spec {path} is incomplete or invalid: {exc}") from None
        if not networks or spec.channel_order not in ("BGR", "RGB") or not 0.0 <= spec.threshold <= 1.0:
            raise WeightsError(f"anti-spoofing model spec {path} is invalid: networks, channel_order or threshold")
        return spec


def spec_path(model_id: str = DEFAULT_MODEL, models_dir: Path | None = None) -> Path:
    """``minifasnet-v1`` -> ``<models>/minifasnet_v1.toml``."""
    return (models_dir or paths.models_dir()) / (model_id.replace("-", "_") + ".toml")


def load_antispoof_spec(model_id: str = DEFAULT_MODEL, models_dir: Path | None = None) -> AntiSpoofSpec:
    path = spec_path(model_id, models_dir)
    if not path.is_file():
        raise WeightsError(f"unknown anti-spoofing model {model_id!r}: {path} not found")
    return AntiSpoofSpec.from_toml(path)


class AntiSpoof:
    """Scores faces as live (1) or a presentation attack (0).

        antispoof = AntiSpoof()                       # minifasnet-v1, on the CPU
        p = antispoof.score(frame_rgb, detection.bbox)  # live score 0..1
        live = p >= antispoof.threshold

    ``score_faces`` scores several faces of one frame and ``score_batch`` (frame, box) pairs of
    several frames in one forward pass per network. Frames are RGB uint8 (H, W, 3), boxes in
    the frame's pixels (the detector's :class:`~faceapp.types.BBox`). Thread-safe for inference
    (no state changes after construction).
    """

    def __init__(self, spec: AntiSpoofSpec | str | None = None, *, device: str = "cpu",
                 threshold: float | None = None) -> None:
        from faceapp import runtime

        if spec is None or isinstance(spec, str):
            spec = load_antispoof_spec(spec or DEFAULT_MODEL)
        self.spec = spec
        self.threshold = float(spec.threshold if threshold is None else threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"anti-spoofing threshold must be within 0..1 (got {self.threshold})")
        self.backend = runtime.backend(device)
        self.networks = []  # as loaded (the released layout; torch only)
        if self.backend == "onnx":  # on the CPU (and always in the installers): ONNX Runtime
            from faceapp.runtime.onnx_antispoof import OnnxAntiSpoofNet

            self.device = runtime.onnx_device(device)
            runners = runtime.onnx_or_torch(lambda: [OnnxAntiSpoofNet(spec, n) for n in spec.networks],
                                            f"anti-spoofing model {spec.model_id}")
            if runners is not None:
                self._runners = runners
                self._torch = None
                return
            self.backend = "torch"
        import torch

        from faceapp.antispoof.network import fuse_batch_norms, minifasnet_from_state_dict
        from faceapp.device import resolve_device

        self.device = resolve_device(device)
        for net_spec in spec.networks:
            net = minifasnet_from_state_dict(net_spec.load_state_dict())
            if net.shape.input_size != spec.input_size:
                raise WeightsError(f"{net_spec.file} takes {net.shape.input_size} px crops, the spec says {spec.input_size}")
            self.networks.append(net.to(self.device).eval())
        self._runners = [fuse_batch_norms(net) for net in self.networks]  # what inference runs
        self._torch = torch

    # -- crops ------------------------------------------------------------------------------
    def crops(self, frame_rgb: np.ndarray, bbox: BBox) -> list[tuple[np.ndarray, CropBox]]:
        """The network inputs for one face: per network its (size, size, 3) crop in the spec's
        channel order (uint8) and the crop's box in the frame."""
        image = _check_frame(frame_rgb)
        out = [crop_face(image, bbox, n.scale, self.spec.input_size) for n in self.spec.networks]
        if self.spec.channel_order == "BGR":  # after the resize (per channel, so the same pixels):
            # reversing a whole 1080p frame's channels first made cv2 copy the crop's region
            out = [(np.ascontiguousarray(crop[:, :, ::-1]), box) for crop, box in out]
        return out

    # -- scores -----------------------------------------------------------------------------
    def probabilities_batch(self, items: Sequence[tuple[np.ndarray, BBox]]) -> np.ndarray:
        """(N, 3) class probabilities (the networks' softmax averaged) of N (frame, box) pairs."""
        if not items:
            return np.zeros((0, 3), np.float32)
        per_net: list[list[np.ndarray]] = [[] for _ in self._runners]
        for frame, bbox in items:
            for j, (crop, _) in enumerate(self.crops(frame, bbox)):
                per_net[j].append(crop)
        if self._torch is None:  # ONNX Runtime: each file gives probabilities (softmax included)
            total = None
            for net, crops in zip(self._runners, per_net, strict=True):
                x = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
                if self.spec.pixel_scale != 1.0:
                    x = x / np.float32(self.spec.pixel_scale)
                p = net(x)
                total = p if total is None else total + p
            return (total / len(self._runners)).astype(np.float32)
        torch = self._torch
        total = None
        with torch.inference_mode():
            for net, crops in zip(self._runners, per_net, strict=True):
                x = torch.from_numpy(np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2)))
                x = x.to(self.device, dtype=torch.float32)
                if self.spec.pixel_scale != 1.0:
                    x = x / self.spec.pixel_scale
                p = torch.softmax(net(x), dim=1)
                total = p if total is None else total + p
        return (total / len(self.networks)).cpu().numpy().astype(np.float32)

    def score_batch(self, items: Sequence[tuple[np.ndarray, BBox]]) -> np.ndarray:
        """(N,) live scores of N (frame, box) pairs, in one pass per network."""
        return self.probabilities_batch(items)[:, self.spec.live_class]

    def score_faces(self, frame_rgb: np.ndarray, bboxes: Sequence[BBox]) -> np.ndarray:
        """(N,) live scores of N faces of one frame."""
        return self.score_batch([(frame_rgb, b) for b in bboxes])

    def score(self, frame_rgb: np.ndarray, bbox: BBox) -> float:
        """The live score (0..1) of the face in ``bbox`` of ``frame_rgb``."""
        return float(self.score_batch([(frame_rgb, bbox)])[0])

    def is_live(self, score: float) -> bool:
        return float(score) >= self.threshold


def _check_frame(frame: np.ndarray) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"a frame must be an RGB uint8 (H, W, 3) array (got {a.dtype} {a.shape})")
    return a
