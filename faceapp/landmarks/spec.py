"""The landmark model's spec: ``resources/models/landmarks_<version>.toml`` beside its weights.

TOML rather than JSON so that :func:`faceapp.embed.weights.available_specs` (which reads every
``*.json`` of the models folder as an *embedding* spec) does not trip over it. The spec knows the
weights file and its sha256, the crop geometry the network was trained with, the input
normalisation, the model card, and the figures measured on 300-W (HELEN test).
Loading checks the checksum first, then ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceapp import paths
from faceapp.errors import WeightsError

DEFAULT_MODEL = "landmarks-v1"


@dataclass(frozen=True)
class LandmarkSpec:
    model_id: str
    file: Path
    sha256: str
    architecture: str = "landmark_net"
    input_size: int = 160  # crop side, pixels
    width: int = 64  # decoder channels
    crop_margin: float = 1.40  # crop side = margin x mean side of the MTCNN box
    crop_shift_y: float = 0.12  # crop centre below the box centre, in box heights
    mean: tuple[float, float, float] = (122.782, 117.001, 104.298)  # subtracted from 0..255 RGB
    scale: float = 256.0  # then divided by this
    card: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # training recipe, measured figures

    @classmethod
    def from_toml(cls, path: Path) -> LandmarkSpec:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise WeightsError(f"landmark model spec {path} cannot be read: {exc}") from None
        try:
            known = {
                "model_id", "file", "sha256", "architecture", "input_size", "width", "crop_margin",
                "crop_shift_y", "mean", "scale", "card",
            }
            return cls(
                model_id=str(data["model_id"]),
                file=Path(path).parent / data["file"],
                sha256=str(data["sha256"]).lower(),
                architecture=str(data.get("architecture", "landmark_net")),
                input_size=int(data["input_size"]),
                width=int(data.get("width", 64)),
                crop_margin=float(data["crop_margin"]),
                crop_shift_y=float(data["crop_shift_y"]),
                mean=tuple(float(v) for v in data["mean"]),
                scale=float(data["scale"]),
                card=(Path(path).parent / data["card"]) if data.get("card") else None,
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"landmark model spec {path} is incomplete or invalid: {exc}") from None

    def to_toml(self) -> str:
        head = {
            "model_id": self.model_id,
            "file": self.file.name,
            "sha256": self.sha256,
            "architecture": self.architecture,
            "input_size": self.input_size,
            "width": self.width,
            "crop_margin": self.crop_margin,
            "crop_shift_y": self.crop_shift_y,
            "mean": list(self.mean),
            "scale": self.scale,
        }
        if self.card is not None:
            head["card"] = self.card.name
        return dump_toml({**head, **self.extra})

    def load_state_dict(self, map_location="cpu") -> dict:
        import torch

        from faceapp.embed.weights import sha256_of

        if not self.file.is_file():
            raise WeightsError(f"landmark weights are missing: {self.file}")
        digest = sha256_of(self.file)
        if digest != self.sha256:
            raise WeightsError(
                f"landmark weights {self.file} are corrupt or replaced (sha256 {digest[:12]}..., expected {self.sha256[:12]}...)"
            )
        try:
            return torch.load(self.file, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises many kinds here
            raise WeightsError(f"landmark weights {self.file} cannot be loaded: {exc}") from None


def spec_path(model_id: str = DEFAULT_MODEL, models_dir: Path | None = None) -> Path:
    """``landmarks-v1`` -> ``<models>/landmarks_v1.toml``."""
    folder = models_dir or paths.models_dir()
    return folder / (model_id.replace("-", "_") + ".toml")


def load_landmark_spec(model_id: str = DEFAULT_MODEL, models_dir: Path | None = None) -> LandmarkSpec:
    path = spec_path(model_id, models_dir)
    if not path.is_file():
        raise WeightsError(f"unknown landmark model {model_id!r}: {path} not found")
    return LandmarkSpec.from_toml(path)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(round(v, 6))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def dump_toml(data: dict[str, Any]) -> str:
    """A small TOML writer: scalars and lists at the top, then one level of tables."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    for name, table in tables:
        lines += ["", f"[{name}]"]
        for key, value in table.items():
            if isinstance(value, dict):
                raise ValueError("dump_toml writes one level of tables only")
            lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"
