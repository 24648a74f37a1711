"""Settings: documented defaults, overridden by the settings file, then by environment variables.

Order of precedence (last wins): the defaults below, ``settings.toml`` in the user's config
folder (or the file named by ``FACEAPP_SETTINGS``), environment variables ``FACEAPP_<NAME>``
(e.g. ``FACEAPP_THRESHOLD=0.3``, ``FACEAPP_DB=sqlite:///door.db``), then command-line flags.

Every value is parsed strictly wherever it comes from (:func:`parse_setting`): a boolean is
only true/false, 1/0, yes/no or on/off; a number must be a finite number in the setting's
range; cross-field rules are checked by :meth:`Settings.validate`. Anything else is a
:class:`~faceapp.errors.ConfigError` naming the setting, the bad value, where it came from
and what is allowed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from faceapp import paths
from faceapp.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """The allowed range of a numeric setting; ``*_open`` excludes that end."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    unit: str = ""

    def allows(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        if self.high is not None and (x >= self.high if self.high_open else x > self.high):
            return False
        return True

    def describe(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None and not (self.low_open or self.high_open):
            text = f"{lo:g}..{hi:g}"
        else:
            parts = []
            if lo is not None:
                parts.append(f"{'>' if self.low_open else '>='} {lo:g}")
            if hi is not None:
                parts.append(f"{'<' if self.high_open else '<='} {hi:g}")
            text = " and ".join(parts)
        return f"{text} {self.unit}".rstrip()


def _doc(text: str, *, limit: Limit | None = None, check: Any = None, allowed: str | None = None, **kw: Any) -> Any:
    """A documented setting; ``check(value) -> bool`` and ``allowed`` (its words) for a text setting's form."""
    return field(metadata={"doc": text, "limit": limit, "check": check, "allowed": allowed}, **kw)


# -- door outputs: the forms of their text settings ---------------------------------------------
_HEX_SEPARATORS = re.compile(r"[\s:,]+")


def hex_bytes(text: str) -> bytes:
    """The bytes a hex setting names: pairs of hex digits, optionally separated by spaces, colons
    or commas (``"A0 01 01 A2"``); ValueError when it is not that."""
    digits = _HEX_SEPARATORS.sub("", text or "")
    if len(digits) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", digits):
        raise ValueError(f"not pairs of hex digits: {text!r}")
    return bytes.fromhex(digits)


def _is_hex(text: str) -> bool:
    try:
        hex_bytes(text)
    except ValueError:
        return False
    return True


def _is_webhook_url(text: str) -> bool:
    from urllib.parse import urlsplit

    if not text:
        return True
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in text)


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
        limit=Limit(0.0, 4.0, low_open=True, high_open=True),
    )
    threshold_model: str | None = _doc(
        "The model threshold was set for. A threshold is a distance on one model's scale, so it is used only "
        "while that model is in force; with any other model (another model setting, FACEAPP_MODEL, --model) that "
        "model's own calibrated value is used instead. Empty = the model setting beside it. The settings page "
        "and --threshold set it.",
        default=None,
        allowed="a model id, or empty for the model setting's",
    )
    top_k: int = _doc("How many nearest people identify reports (1..50).", default=5, limit=Limit(1, 50))
    threads: int = _doc(
        "CPU threads for the networks (ONNX Runtime's sessions or torch's pool), 0..256; 0 = every core "
        "(idle threads sleep rather than spin, so the window and the camera still get the CPU when the "
        "networks wait). Fewer leaves cores to other programs on a shared machine. Applies at the next start.",
        default=0,
        limit=Limit(0, 256),
    )
    camera: str = _doc("Camera source: a device index (0), a video file or a folder of images.", default="0")
    min_face_size: int = _doc(
        "Smallest face (pixels, shorter side of the box) accepted for enrollment and decisions; 10..1000.",
        default=60,
        limit=Limit(10, 1000, unit="pixels"),
    )
    min_detection_score: float = _doc("Smallest detector confidence (0..1) for a face to count.", default=0.90,
                                      limit=Limit(0.0, 1.0))
    min_brightness: float = _doc("Mean luma (0..255) of the aligned face below which it is too dark; "
                                 "below max_brightness.", default=45.0, limit=Limit(0.0, 255.0))
    max_brightness: float = _doc("Mean luma (0..255) above which the face is washed out.", default=225.0,
                                 limit=Limit(0.0, 255.0))
    min_sharpness: float = _doc(
        "Variance of the Laplacian of the aligned face below which it is too blurry (higher is sharper; "
        "about 1% of LFW's news photos fall below the default 12); 0 or more.",
        default=12.0,
        limit=Limit(0.0),
    )
    max_image_side: int = _doc(
        "Images with a longer side (pixels) are downscaled before detection; keeps memory bounded; 256..16384.",
        default=1600,
        limit=Limit(256, 16384, unit="pixels"),
    )
    door_frames: int = _doc("Door: consecutive agreeing frames needed for a decision (1..30).", default=3,
                            limit=Limit(1, 30))
    door_timeout_s: float = _doc("Door: seconds to reach a decision before TIMEOUT; over 0, at most 600.",
                                 default=8.0, limit=Limit(0.0, 600.0, low_open=True, unit="seconds"))
    door_reset_s: float = _doc("Door: seconds a GRANTED/DENIED screen stays before it resets; over 0, at most 600.",
                               default=4.0, limit=Limit(0.0, 600.0, low_open=True, unit="seconds"))
    # -- 1:K decisions and dim faces (faceapp/match/open_set.py, faceapp/detect/quality.py) -------------
    recognize_far: float = _doc(
        "Recognize mode (1:K) and enrollment's 'already matches' check: the accepted chance that a stranger "
        "is taken for *some* enrolled person in one attempt; with the gallery size it sets the recognize "
        "threshold from the model's calibration curve (never above tau); over 0, under 0.5.",
        default=0.001,
        limit=Limit(0.0, 0.5, low_open=True, high_open=True),
    )
    recognize_margin: float = _doc(
        "Recognize mode: how much closer (squared L2) the nearest person must be than the second-nearest "
        "for a frame to name them; verify mode: the claimed person than anyone else enrolled; 0 = off; 0..1.",
        default=0.02,
        limit=Limit(0.0, 1.0),
    )
    brightness_normalize: bool = _doc(
        "A face darker than min_brightness is brightened (gamma on the aligned face) before it is judged "
        "and encoded, instead of being refused.",
        default=True,
    )
    min_raw_brightness: float = _doc(
        "With brightness_normalize: mean luma (0..255) of the aligned face below which it is too dark "
        "even to brighten (too little signal); 0..255.",
        default=12.0,
        limit=Limit(0.0, 255.0),
    )
    # -- door: repeats and privacy (faceapp/door_cooldown.py, the door screen) ------------------------------
    door_cooldown_s: float = _doc(
        "Door: seconds after a person was let in during which the same person at the same door is shown "
        "welcome but the lock is not opened and nothing is logged again (someone standing at the door); "
        "0 = off; 0..3600.",
        default=30.0,
        limit=Limit(0.0, 3600.0, unit="seconds"),
    )
    door_attempt_window_s: float = _doc(
        "Door (recognize mode): seconds after an unrecognized face (or a timeout) was logged during which "
        "further ones at the same door are shown but not logged one by one; the next logged one (or a "
        "door_quiet_denials event when the window closes, every 5 minutes and when the door stops) says how "
        "many were held back; 0 = log each; 0..3600.",
        default=30.0,
        limit=Limit(0.0, 3600.0, unit="seconds"),
    )
    door_name_completion: bool = _doc(
        "Door (verify mode): offer the enrolled names while the visitor types (shows visitors who is "
        "enrolled, one letter at a time); off by default.",
        default=False,
    )
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
        limit=Limit(0.0, 0.4),
    )
    max_yaw_deg: float = _doc(
        "Enrollment: largest head turn left/right (degrees, from the 68 landmarks) of a usable photo; 5..90.",
        default=25.0,
        limit=Limit(5.0, 90.0, unit="degrees"),
    )
    max_pitch_deg: float = _doc(
        "Enrollment: largest head tilt up/down (degrees, from the 68 landmarks) of a usable photo; 5..90.",
        default=20.0,
        limit=Limit(5.0, 90.0, unit="degrees"),
    )
    liveness_time_limit_s: float = _doc("Liveness: seconds to blink or turn as asked; 1..60.", default=6.0,
                                        limit=Limit(1.0, 60.0, unit="seconds"))
    liveness_turn_deg: float = _doc(
        "Liveness: head turn (degrees of yaw) a turn challenge needs; higher is harder to fake and to pass; 10..45.",
        default=10.0,  # measured on the real videos: scripts/liveness_traces.py, docs/door-benchmark.md
        limit=Limit(10.0, 45.0, unit="degrees"),
    )
    liveness_planar_max_error: float = _doc(
        "Liveness: the landmarks of a turn that fit one plane within this RMS error (fraction of the eye-corner "
        "distance) are a photo or a screen; higher rejects more photos and more real heads; over 0, under 0.5.",
        default=0.05,
        limit=Limit(0.0, 0.5, low_open=True, high_open=True),
    )
    # -- anti-spoofing (faceapp/antispoof, docs/antispoof.md): a network scores the frames of the agreeing run --
    antispoof: bool = _doc(
        "Door: also judge each attempt with the anti-spoofing network (MiniFASNet: print / screen / mask); an "
        "attempt whose agreeing frames' median live score is below antispoof_threshold is denied as SPOOF. On by default: "
        "it runs wherever the other networks do (ONNX Runtime on a CPU, PyTorch on a GPU).",
        # measured at the door on the real videos (scripts/eval_door.py --antispoof, docs/door-benchmark.md):
        # 0 SPOOF denials of real people, genuine acceptance 39/40 (97.5%, off: 44/44), every print /
        # screen attack attempt denied (6/6 on 4 December, after scoring only the agreeing run; off: 7 of 7 granted)
        default=True,
    )
    antispoof_threshold: float | None = _doc(
        "Anti-spoofing: live score (0..1, probability of a live face) at or above which an attempt's median "
        "counts as live; higher stops more attacks and more real people. Empty = the model's value (its spec).",
        default=None,
        limit=Limit(0.0, 1.0, low_open=True, high_open=True),
    )
    antispoof_min_frames: int = _doc(
        "Anti-spoofing: agreeing frames of an attempt that must be scored before its verdict (1..30).",
        default=5,
        limit=Limit(1, 30),
    )
    # -- door outputs (faceapp/outputs): what a recorded decision drives; README "Wiring a door" --------
    door_id: str = _doc("Door outputs: this door's name in webhooks and commands; empty = the machine's host name.",
                        default="")
    door_command: str = _doc(
        "Door outputs: a program and its arguments (split like a shell does, run without one) started on an "
        "access granted, with the decision as JSON on stdin and in FACEAPP_* environment variables; exit 0 means "
        "the lock opened; empty = none.",
        default="",
    )
    door_command_on: str = _doc("Door outputs: when door_command runs: granted (access granted only) or all "
                                "(every decision).", default="granted", check=lambda v: v in ("granted", "all"),
                                allowed="granted or all")
    door_command_timeout_s: float = _doc("Door outputs: seconds door_command may run before it is stopped (a failed "
                                         "unlock); over 0, at most 60.", default=5.0,
                                         limit=Limit(0.0, 60.0, low_open=True, unit="seconds"))
    door_webhook_url: str = _doc(
        "Door outputs: an http(s) URL that gets an HTTP POST of every decision as JSON, in the background "
        "(retried with backoff); empty = none.",
        default="",
        check=_is_webhook_url,
        allowed="an http:// or https:// URL, or empty",
    )
    door_webhook_secret: str = _doc(
        "Door outputs: key of the webhook's HMAC-SHA256 signature (header X-Faceapp-Signature: sha256=<hex of the "
        "body>); empty = unsigned. Better set as FACEAPP_DOOR_WEBHOOK_SECRET than in the settings file.",
        default="",
    )
    door_webhook_timeout_s: float = _doc("Door outputs: seconds one webhook request may take; over 0, at most 60.",
                                         default=5.0, limit=Limit(0.0, 60.0, low_open=True, unit="seconds"))
    door_webhook_retries: int = _doc("Door outputs: how often a failed webhook is tried again (backoff 1, 2, 4 s ...; "
                                     "at most 60 s in all); 0..10.", default=3, limit=Limit(0, 10))
    door_serial: str = _doc("Door outputs: serial port of a lock relay (/dev/ttyUSB0, COM3); empty = none.", default="")
    door_serial_baud: int = _doc("Door outputs: the serial port's speed (baud); 50..921600.", default=9600,
                                 limit=Limit(50, 921600))
    door_serial_unlock: str = _doc("Door outputs: the bytes that unlock, in hex (A0 01 01 A2: relay 1 on, for "
                                   "LCUS-1 USB relay boards).", default="A0 01 01 A2", check=_is_hex,
                                   allowed="pairs of hex digits, spaces allowed")
    door_serial_relock: str = _doc("Door outputs: the bytes that lock again after door_unlock_s, in hex (A0 01 00 A1: "
                                   "relay 1 off); empty = none (a relay that closes by itself).",
                                   default="A0 01 00 A1", check=_is_hex,
                                   allowed="pairs of hex digits, spaces allowed, or empty")
    door_unlock_s: float = _doc("Door outputs: seconds the lock stays open after a grant; over 0, at most 600.",
                                default=5.0, limit=Limit(0.0, 600.0, low_open=True, unit="seconds"))

    def validate(self) -> Settings:
        """Check every value's type and range, then the rules between settings (ConfigError)."""
        for f in fields(self):
            _check(f.name, getattr(self, f.name))
        if not self.min_brightness < self.max_brightness:
            raise ConfigError(
                f"settings min_brightness = {self.min_brightness:g} and max_brightness = {self.max_brightness:g} "
                "do not fit together: min_brightness must be below max_brightness"
            )
        if self.liveness and self.door_timeout_s < self.liveness_time_limit_s + 2.0:
            raise ConfigError(
                f"with liveness on, door_timeout_s ({self.door_timeout_s:g} s) must be at least "
                f"liveness_time_limit_s + 2 ({self.liveness_time_limit_s + 2.0:g} s): the challenge needs the time"
            )
        return self

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or paths.default_db_url()

    def threshold_for(self, model_id: str) -> float | None:
        """The threshold setting if it was set for ``model_id`` (``threshold_model``, else
        ``model``), else None: that model's calibrated value applies."""
        if self.threshold is None or (self.threshold_model or self.model) != model_id:
            return None
        return float(self.threshold)

    def replace(self, **changes: Any) -> Settings:
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **_pin_threshold(self, changes)).validate()


def _pin_threshold(settings: Settings, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` to ``settings`` with the threshold kept to its model: a threshold given in the
    changes is for the model in force after them (unless they name one); a model change alone
    leaves a threshold set before it with the model it was set for."""
    changes = dict(changes)
    if "threshold_model" not in changes:
        if "threshold" in changes:
            changes["threshold_model"] = None
        elif "model" in changes and settings.threshold is not None and settings.threshold_model is None:
            changes["threshold_model"] = settings.model
    return changes


_FIELDS = {f.name: f for f in fields(Settings)}
_ENV_ALIASES = {"db_url": ("FACEAPP_DB", "FACEAPP_DB_URL")}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_INT_RE = re.compile(r"[+-]?\d+")
_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _kind(name: str) -> str:
    """'bool', 'int', 'float' or 'str' (the annotation without ``| None``)."""
    return str(_FIELDS[name].type).split("|")[0].strip()


def _optional(name: str) -> bool:
    return "None" in str(_FIELDS[name].type)


def allowed(name: str) -> str:
    """What a setting accepts, in words (the end of every ConfigError about it)."""
    kind, limit = _kind(name), _FIELDS[name].metadata["limit"]
    if name == "device":
        return "auto, cpu, cuda or cuda:N"
    if name == "camera":
        return "a device index, a video file or a folder of images (not empty)"
    if _FIELDS[name].metadata.get("allowed"):
        return _FIELDS[name].metadata["allowed"]
    if kind == "bool":
        return "true/false, 1/0, yes/no or on/off"
    if kind in ("int", "float"):
        text = "an integer" if kind == "int" else "a number"
        text += f" {limit.describe()}" if limit else ""
        return text + (", or empty for the model's calibrated value" if _optional(name) else "")
    if name in ("model", "landmark_model"):
        return "a model id (not empty)"
    return "text"


def _short(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def _invalid(name: str, raw: Any, source: str | None) -> ConfigError:
    where = f" (from {source})" if source else ""
    return ConfigError(f"setting {name} has an invalid value {_short(raw)}{where}: allowed {allowed(name)}")


def _check(name: str, value: Any, raw: Any = None, source: str | None = None) -> Any:
    """``value`` if it has the setting's type and lies in its range, else the ConfigError."""
    raw = value if raw is None else raw
    kind, limit = _kind(name), _FIELDS[name].metadata["limit"]
    if value is None and _optional(name):
        return None
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, str)
    if ok and limit is not None:
        ok = limit.allows(value)
    if ok and name == "device":
        ok = _DEVICE_RE.fullmatch(value) is not None
    if ok and name in ("camera", "model", "landmark_model"):
        ok = value.strip() != ""
    if ok and _FIELDS[name].metadata.get("check") is not None:
        ok = bool(_FIELDS[name].metadata["check"](value))
    if not ok:
        raise _invalid(name, raw, source)
    return value


def parse_setting(name: str, raw: Any, source: str | None = None) -> Any:
    """The value of setting ``name`` from ``raw`` (text from the environment or a flag, or a TOML
    value), checked against the setting's type and range. ``source`` names where it came from
    (``FACEAPP_LIVENESS``, ``--threshold``, ``settings file ...``) for the error message."""
    if name not in _FIELDS:
        raise ConfigError(f"unknown setting {name!r}{f' (from {source})' if source else ''}")
    kind = _kind(name)
    text = raw.strip() if isinstance(raw, str) else None
    if raw is None or (text == "" and _optional(name)):
        if _optional(name):
            return None
        raise _invalid(name, raw, source)
    value: Any = None
    if kind == "bool":
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, int) and raw in (0, 1):
            value = bool(raw)
        elif text is not None and text.lower() in _TRUE + _FALSE:
            value = text.lower() in _TRUE
    elif kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        elif text is not None and _INT_RE.fullmatch(text):
            value = int(text)
    elif kind == "float":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
        elif text is not None:
            try:
                value = float(text)
            except ValueError:
                value = None
    elif isinstance(raw, str):
        value = raw
    elif name == "camera" and isinstance(raw, int) and not isinstance(raw, bool):
        value = str(raw)  # camera = 0 in TOML is the device index
    if value is None:
        raise _invalid(name, raw, source)
    return _check(name, value, raw, source)


def env_vars(name: str) -> tuple[str, ...]:
    """The environment variables that set ``name`` (the first one set wins)."""
    return _ENV_ALIASES.get(name, (f"FACEAPP_{name.upper()}",))


def settings_path() -> Path:
    env = os.environ.get("FACEAPP_SETTINGS")
    return Path(env) if env else paths.settings_file()


def _label(path: Path) -> str:
    """The path for a message: a very long one is shortened, so the message stays one short line."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings a TOML file sets, parsed and checked one by one; {} when there is no file.

    A path that exists but cannot be read (a folder, no permission, a name too long) is a
    ConfigError naming it: it never silently means the defaults."""
    label = _label(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        log.debug("no settings file at %s: defaults", path)
        return {}
    except IsADirectoryError:
        raise ConfigError(f"settings file {label} is a folder, not a file") from None
    except PermissionError:
        raise ConfigError(f"settings file {label} cannot be read: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"settings file {label} cannot be read: {exc.strerror or exc}") from None
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"settings file {label} is not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {label} is not valid TOML: {exc}") from None
    values = {}
    for key, raw in table.items():
        if key not in _FIELDS:
            raise ConfigError(f"settings file {label}: unknown setting {key!r}")
        values[key] = parse_setting(key, raw, f"settings file {label}")
    return values


def load_settings(path: Path | None = None, *, env: bool = True) -> Settings:
    """Defaults, then the settings file (if it exists), then FACEAPP_* environment variables."""
    settings = Settings(**read_settings_file(path or settings_path())).validate()
    if not env:
        return settings
    values: dict[str, Any] = {}
    for name in _FIELDS:
        for var in env_vars(name):
            if var in os.environ:
                values[name] = parse_setting(name, os.environ[var], var)
                break
    return dataclasses.replace(settings, **_pin_threshold(settings, values)).validate()


def override(settings: Settings, values: dict[str, Any], sources: dict[str, str] | None = None) -> Settings:
    """``settings`` with ``values`` (raw, e.g. command-line flags; None = not given) parsed strictly.

    ``sources`` names where each came from (``{"threshold": "--threshold"}``) for the messages."""
    sources = sources or {}
    parsed = {k: parse_setting(k, v, sources.get(k)) for k, v in values.items() if v is not None}
    return dataclasses.replace(settings, **_pin_threshold(settings, parsed)).validate()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


SECRET_SETTINGS = frozenset({"door_webhook_secret"})  # never shown, printed or logged


def shown(name: str, value: Any) -> Any:
    """``value`` of setting ``name`` as it may be shown or logged: a secret is "***" when set."""
    return "***" if name in SECRET_SETTINGS and value else value


def render_settings(settings: Settings, *, redact: bool = False) -> str:
    """The settings as a commented TOML file (unset optional values are commented out);
    ``redact`` hides the secrets (for showing it, not for saving it)."""
    lines = ["# faceapp settings. Every key is optional; delete one to get its default back.", ""]
    for f in fields(Settings):
        lines.append(f"# {f.metadata['doc']}")
        lines.append(f"# allowed: {allowed(f.name)}")
        value = shown(f.name, getattr(settings, f.name)) if redact else getattr(settings, f.name)
        lines.append(f"# {f.name} = " if value is None else f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (a temp file, then rename)."""
    settings.validate()
    path = path or settings_path()
    paths.make_private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    # owner-only: the file can hold a secret (door_webhook_secret) and says how the door works
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_settings(settings))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
