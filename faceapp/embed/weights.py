"""Weights specs: each shipped model is a weights file plus a JSON spec beside it that knows
the file, its sha256, the architecture, embedding size, input size, input normalisation, the
5-point alignment template and the calibrated threshold; and a model card (``.md``).

``"flip_tta": true`` in a spec (default false) makes the model embed with flip test-time
augmentation: the encoding of a chip is ``normalise(e(chip) + e(mirrored chip))``, the two unit
encodings of the network averaged. It is part of what the model id names (two specs of the
same weights, with and without it, are two models whose templates are not mixed).

Loading checks the checksum first, then ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp import paths
from faceapp.errors import WeightsError

log = logging.getLogger(__name__)

BORDERS = ("replicate", "black")  # WeightsSpec.border


@dataclass(frozen=True, eq=False)
class WeightsSpec:
    model_id: str
    file: Path
    sha256: str
    architecture: str
    embedding_dim: int
    input_size: int
    mean: tuple[float, float, float]  # subtracted from 0..255 RGB
    scale: float  # then divided by this
    template: np.ndarray  # (5, 2) MTCNN points in input_size x input_size pixels
    threshold: float  # calibrated max squared L2 distance for "same person"
    card: Path | None = None
    extra: dict | None = None
    flip_tta: bool = False  # embed as normalise(e(chip) + e(mirrored chip))
    # how the alignment warp fills chip pixels that lie outside the photo (a face at its edge):
    # "replicate" (the edge pixels repeated) or "black" (zeros, as OpenCV's alignCrop, SFace's own
    # alignment, makes its chips: sface-v1 measured 99.23% -> 99.40% on LFW tight folds 1-5)
    border: str = "replicate"

    @classmethod
    def from_json(cls, spec_path: Path) -> WeightsSpec:
        try:
            data = json.loads(spec_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WeightsError(f"model spec {spec_path} cannot be read: {exc}") from None
        try:
            norm = data["normalization"]
            flip = data.get("flip_tta", False)
            if not isinstance(flip, bool):
                raise ValueError(f"flip_tta must be true or false (got {flip!r})")
            template = np.asarray(data["template"], dtype=np.float32).reshape(5, 2)
            border = data.get("border", "replicate")
            if border not in BORDERS:
                raise ValueError(f"border must be one of {', '.join(BORDERS)} (got {border!r})")
            return cls(
                model_id=str(data["model_id"]),
                file=spec_path.parent / data["file"],
                sha256=str(data["sha256"]).lower(),
                architecture=str(data["architecture"]),
                embedding_dim=int(data["embedding_dim"]),
                input_size=int(data["input_size"]),
                mean=tuple(float(v) for v in norm["mean"]),
                scale=float(norm["scale"]),
                template=template,
                threshold=float(data["threshold"]),
                card=(spec_path.parent / data["card"]) if data.get("card") else None,
                extra={k: v for k, v in data.items() if k not in _KNOWN},
                flip_tta=flip,
                border=border,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"model spec {spec_path} is incomplete or invalid: {exc}") from None

    def check_file(self) -> None:
        """Raise WeightsError unless the weights file exists and matches its sha256."""
        if not self.file.is_file():
            raise WeightsError(f"weights file for model {self.model_id} is missing: {self.file}")
        digest = sha256_of(self.file)
        if digest != self.sha256:
            raise WeightsError(
                f"weights file {self.file} is corrupt or replaced (sha256 {digest[:12]}..., expected {self.sha256[:12]}...)"
            )

    def load_state_dict(self, map_location="cpu") -> dict:
        import torch

        self.check_file()
        try:
            return torch.load(self.file, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises many kinds here
            raise WeightsError(f"weights file {self.file} cannot be loaded: {exc}") from None


_KNOWN = {
    "model_id", "file", "sha256", "architecture", "embedding_dim", "input_size",
    "normalization", "template", "threshold", "card", "flip_tta", "border",
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def available_specs(models_dir: Path | None = None) -> dict[str, WeightsSpec]:
    """All model specs (``*.json``) in the models folder, by model id."""
    folder = models_dir or paths.models_dir()
    specs: dict[str, WeightsSpec] = {}
    for spec_path in sorted(folder.glob("*.json")):
        try:
            spec = WeightsSpec.from_json(spec_path)
        except WeightsError as exc:
            log.warning("%s", exc)
            continue
        specs[spec.model_id] = spec
    return specs


def load_spec(model_id: str, models_dir: Path | None = None) -> WeightsSpec:
    specs = available_specs(models_dir)
    if model_id not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise WeightsError(f"unknown model {model_id!r} (available: {known})")
    return specs[model_id]
