"""Settings: documented defaults, overridden by the settings file, then by environment variables.

Order of precedence (last wins): the defaults below, ``settings.toml`` in the user's config
folder (or the file named by ``FACEAPP_SETTINGS``), environment variables ``FACEAPP_<NAME>``
(e.g. ``FACEAPP_THRESHOLD=0.3``, ``FACEAPP_DB=sqlite:///door.db``), then command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from faceapp import paths
from faceapp.errors import ConfigError


def _doc(text: str, **kw: Any) -> Any:
    return field(metadata={"doc": text}, **kw)


@dataclass(frozen=True)
class Settings:
    db_url: str = _doc(
        "SQLAlchemy URL of the enrollment database; empty = faceapp.db in the user's data folder.",
        default="",
    )
    device: str = _doc("Where the networks run: auto (CUDA when available), cpu or cuda.", default="auto")
    model: str = _doc("Id of the embedding model (a spec in resources/models/).", default="dlib-resnet-v1")
    threshold: float | None = _doc(
        "Max squared L2 distance between unit encodings that counts as the same person (0..4); "
        "lower is stricter (fewer false accepts, more false rejects). Empty = the model's calibrated value.",
        default=None,
    )
    top_k: int = _doc("How many nearest people identify reports (1..50).", default=5)
    camera: str = _doc("Camera source: a device index (0), a video file or a folder of images.", default="0")
    min_face_size: int = _doc(
        "Smallest face (pixels, shorter side of the box) accepted for enrollment and decisions; 40..400.",
        default=60,
    )
    min_detection_score: float = _doc("Smallest detector confidence (0..1) for a face to count.", default=0.90)
    min_brightness: float = _doc("Mean luma (0..255) of the aligned face below which it is too dark.", default=45.0)
    max_brightness: float = _doc("Mean luma (0..255) above which the face is washed out.", default=225.0)
    min_sharpness: float = _doc(
        "Variance of the Laplacian of the aligned face below which it is too blurry (higher is sharper; "
        "about 1% of LFW's news photos fall below the default 12).",
        default=12.0,
    )
    max_image_side: int = _doc(
        "Images with a longer side (pixels) are downscaled before detection; keeps memory bounded.",
        default=1600,
    )
    door_frames: int = _doc("Door: consecutive agreeing frames needed for a decision (1..30).", default=3)
    door_timeout_s: float = _doc("Door: seconds to reach a decision before TIMEOUT.", default=8.0)
    door_reset_s: float = _doc("Door: seconds a GRANTED/DENIED screen stays before it resets.", default=4.0)
    liveness: bool = _doc("Door: require a liveness challenge before granting.", default=False)
    landmark_model: str = _doc("Id of the 68-point landmark model (a landmarks_*.toml in resources/models/).",
                               default="landmarks-v1")
    show_landmarks: bool = _doc("Live/door views: draw the 68 landmarks and the head pose on each face.", default=False)
    enroll_check_landmarks: bool = _doc(
        "Enrollment: refuse photos with closed eyes or a turned head (judged from the 68 landmarks, with the "
        "three limits below).",
        default=True,
    )
    min_eye_aspect_ratio: float = _doc(
        "Enrollment: eye aspect ratio (68 landmarks; ~0.3 open, under 0.15 closed) below which the eyes "
        "count as closed; 0 turns the check off; 0..0.4.",
        default=0.15,
    )
    max_yaw_deg: float = _doc(
        "Enrollment: largest head turn left/right (degrees, from the 68 landmarks) of a usable photo; 5..90.",
        default=25.0,
    )
    max_pitch_deg: float = _doc(
        "Enrollment: largest head tilt up/down (degrees, from the 68 landmarks) of a usable photo; 5..90.",
        default=20.0,
    )
    liveness_time_limit_s: float = _doc("Liveness: seconds to blink or turn as asked; 1..60.", default=6.0)
    liveness_turn_deg: float = _doc(
        "Liveness: head turn (degrees of yaw) a turn challenge needs; higher is harder to fake and to pass; 10..45.",
        default=25.0,
    )
    liveness_planar_max_error: float = _doc(
        "Liveness: the landmarks of a turn that fit one plane within this RMS error (fraction of the eye-corner "
        "distance) are a photo or a screen; higher rejects more photos and more real heads; 0..0.5.",
        default=0.05,
    )

    def validate(self) -> Settings:
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda (got {self.device!r})")
        if self.threshold is not None and not (0.0 < self.threshold < 4.0):
            raise ConfigError(f"threshold must be between 0 and 4 (got {self.threshold})")
        if not 1 <= self.top_k <= 50:
            raise ConfigError(f"top_k must be 1..50 (got {self.top_k})")
        if not 10 <= self.min_face_size <= 1000:
            raise ConfigError(f"min_face_size must be 10..1000 pixels (got {self.min_face_size})")
        if not 0.0 <= self.min_detection_score <= 1.0:
            raise ConfigError(f"min_detection_score must be 0..1 (got {self.min_detection_score})")
        if self.max_image_side < 256:
            raise ConfigError(f"max_image_side must be at least 256 (got {self.max_image_side})")
        if not 1 <= self.door_frames <= 30:
            raise ConfigError(f"door_frames must be 1..30 (got {self.door_frames})")
        if not 0.0 <= self.min_eye_aspect_ratio <= 0.4:
            raise ConfigError(f"min_eye_aspect_ratio must be 0..0.4 (got {self.min_eye_aspect_ratio})")
        for name in ("max_yaw_deg", "max_pitch_deg"):
            if not 5.0 <= getattr(self, name) <= 90.0:
                raise ConfigError(f"{name} must be 5..90 degrees (got {getattr(self, name)})")
        if not 1.0 <= self.liveness_time_limit_s <= 60.0:
            raise ConfigError(f"liveness_time_limit_s must be 1..60 seconds (got {self.liveness_time_limit_s})")
        if not 10.0 <= self.liveness_turn_deg <= 45.0:
            raise ConfigError(f"liveness_turn_deg must be 10..45 degrees (got {self.liveness_turn_deg})")
        if not 0.0 < self.liveness_planar_max_error < 0.5:
            raise ConfigError(f"liveness_planar_max_error must be 0..0.5 (got {self.liveness_planar_max_error})")
        if self.liveness and self.door_timeout_s < self.liveness_time_limit_s + 2.0:
            raise ConfigError(
                f"with liveness on, door_timeout_s ({self.door_timeout_s:g} s) must be at least "
                f"liveness_time_limit_s + 2 ({self.liveness_time_limit_s + 2.0:g} s): the challenge needs the time"
            )
        return self

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or paths.default_db_url()

    def replace(self, **changes: Any) -> Settings:
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes).validate()


_ENV_ALIASES = {"db_url": ("FACEAPP_DB", "FACEAPP_DB_URL")}


def _coerce(name: str, raw: Any) -> Any:
    f = {f.name: f for f in fields(Settings)}[name]
    kind = str(f.type)
    if raw is None or (isinstance(raw, str) and raw.strip() == "" and "None" in kind):
        return None
    try:
        if kind.startswith("bool"):
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name} has an invalid value {raw!r} (expected {kind})") from None


def settings_path() -> Path:
    env = os.environ.get("FACEAPP_SETTINGS")
    return Path(env) if env else paths.settings_file()


def load_settings(path: Path | None = None, *, env: bool = True) -> Settings:
    """Defaults, then the settings file (if it exists), then FACEAPP_* environment variables."""
    values: dict[str, Any] = {}
    path = path or settings_path()
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
        known = {f.name for f in fields(Settings)}
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(f"settings file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw)
    if env:
        for f in fields(Settings):
            for var in _ENV_ALIASES.get(f.name, (f"FACEAPP_{f.name.upper()}",)):
                if var in os.environ:
                    values[f.name] = _coerce(f.name, os.environ[var])
                    break
    return Settings(**values).validate()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def render_settings(settings: Settings) -> str:
    """The settings as a commented TOML file (unset optional values are commented out)."""
    lines = ["# faceapp settings. Every key is optional; delete one to get its default back.", ""]
    for f in fields(Settings):
        lines.append(f"# {f.metadata['doc']}")
        value = getattr(settings, f.name)
        lines.append(f"# {f.name} = " if value is None else f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (a temp file, then rename)."""
    settings.validate()
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_settings(settings), encoding="utf-8")
    os.replace(tmp, path)
    return path
