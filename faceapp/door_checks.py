"""What a door checks when it starts (the kiosk's door page and the headless door alike).

- :func:`weaker_settings`: the security-relevant settings in force that are weaker than their
  defaults (anti-spoofing off or looser, fewer agreeing frames, a looser 1:K target or margin,
  a threshold looser than the model's calibrated one, quality gates that let smaller, blurrier,
  less certain or darker faces be decided on, name completion on...), each with where
  it came from when that can be told (an environment variable, the settings file).
  :func:`report_weaker_settings` logs them as ONE warning line and ONE access-log event
  (kind :data:`SETTINGS_EVENT`), so a door weakened through the environment or the settings
  file never runs silently weakened.
- :func:`recognize_refusal`: fail secure for recognize mode (1:K) on a model without a
  calibration curve: its recognize rule (:class:`faceapp.match.open_set.OpenSetRule` with
  ``curve`` None) would use the 1:1 threshold at every gallery size (a stranger taken for
  *someone* in about 63% of attempts at 1,000 people), so with more than one person enrolled
  the door refuses to run in that mode (:class:`faceapp.errors.ConfigError`, one line).

Qt-free.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faceapp.errors import ConfigError

log = logging.getLogger(__name__)

SETTINGS_EVENT = "door_settings"


@dataclass(frozen=True)
class Weakening:
    """One setting weaker than its default: ``text`` says what and why, ``source`` where it
    came from ("" when it cannot be told: a command-line flag, a caller's Settings)."""

    name: str
    text: str
    source: str = ""

    def line(self) -> str:
        return f"{self.text} (from {self.source})" if self.source else self.text


def _default(name: str) -> Any:
    from faceapp.config import Settings

    return getattr(Settings(), name)


def setting_source(name: str, value: Any) -> str:
    """Where ``value`` of setting ``name`` came from, when that can be told: the environment
    variable that sets it, else the settings file that does ("" otherwise)."""
    from faceapp.config import env_vars, parse_setting, read_settings_file, settings_path

    for var in env_vars(name):
        if var in os.environ:
            try:
                if parse_setting(name, os.environ[var], var) == value:
                    return var
            except ConfigError:
                pass
            break
    try:
        path = settings_path()
        if read_settings_file(path).get(name, object()) == value:
            return f"settings file {path}"
    except ConfigError:
        pass
    return ""


def _antispoof_model_threshold() -> float | None:
    try:
        from faceapp.antispoof.model import load_antispoof_spec

        return float(load_antispoof_spec().threshold)
    except Exception:  # no anti-spoofing model here: nothing to compare with
        return None


def _looser_quality_gates(s: Any) -> list[tuple[str, str]]:
    """The door's quality gates (:mod:`faceapp.detect.quality`: a frame that fails one is not
    decided on) looser than their defaults: smaller, less certain, blurrier, darker or brighter
    faces decided on, where the model's calibrated error rates were never measured."""
    found: list[tuple[str, str]] = []

    def lower(name: str, why: str) -> None:
        value, default = getattr(s, name), _default(name)
        if value < default - 1e-9:
            found.append((name, f"{name} = {value:g} (default {default:g}): {why}"))

    lower("min_face_size", "smaller faces decided on")
    lower("min_detection_score", "less certain detections decided on")
    lower("min_sharpness", "blurrier faces decided on")
    # The darkest face decided on: with brightening, min_raw_brightness; without, min_brightness.
    dark = "min_raw_brightness" if s.brightness_normalize else "min_brightness"
    floor, default_floor = getattr(s, dark), _default("min_raw_brightness")
    if floor < default_floor - 1e-9:
        what = (f"(default {default_floor:g})" if s.brightness_normalize else
                f"with brightness_normalize off (the defaults decide on no face darker than {default_floor:g})")
        found.append((dark, f"{dark} = {floor:g} {what}: darker faces decided on"))
    if s.max_brightness > _default("max_brightness") + 1e-9:
        found.append(("max_brightness", f"max_brightness = {s.max_brightness:g} (default "
                                        f"{_default('max_brightness'):g}): washed-out faces decided on"))
    return found


def weaker_settings(settings: Any, *, spec: Any = None, threshold: float | None = None) -> list[Weakening]:
    """The security-relevant settings of ``settings`` weaker than their defaults (see the module
    doc). ``spec``: the running model's spec (its calibrated threshold and curve); ``threshold``:
    the threshold in force (the engine's), judged by :func:`faceapp.threshold_guard.assess`."""
    found: list[tuple[str, str]] = []
    s = settings
    if not s.antispoof:
        found.append(("antispoof", "anti-spoofing is off (antispoof = false): a photo or a screen is not stopped"))
    else:
        model = _antispoof_model_threshold()
        if s.antispoof_threshold is not None and model is not None and s.antispoof_threshold < model - 1e-9:
            found.append(("antispoof_threshold", f"antispoof_threshold = {s.antispoof_threshold:g} is below the "
                                                 f"anti-spoofing model's {model:g}: more photos pass as live"))
        if s.antispoof_min_frames < _default("antispoof_min_frames"):
            found.append(("antispoof_min_frames", f"antispoof_min_frames = {s.antispoof_min_frames} (default "
                                                  f"{_default('antispoof_min_frames')}): fewer frames judged live"))
    if s.door_frames < _default("door_frames"):
        found.append(("door_frames", f"door_frames = {s.door_frames} (default {_default('door_frames')}): "
                                     "fewer agreeing frames decide"))
    if s.recognize_far > _default("recognize_far") + 1e-12:
        found.append(("recognize_far", f"recognize_far = {s.recognize_far:g} (default {_default('recognize_far'):g}): "
                                       "a looser 1:K threshold, more strangers taken for someone"))
    if s.recognize_margin < _default("recognize_margin") - 1e-12:
        found.append(("recognize_margin", f"recognize_margin = {s.recognize_margin:g} (default "
                                          f"{_default('recognize_margin'):g}): look-alikes told apart less"))
    if s.liveness and s.liveness_planar_max_error < _default("liveness_planar_max_error") - 1e-12:
        found.append(("liveness_planar_max_error", f"liveness_planar_max_error = {s.liveness_planar_max_error:g} "
                                                   f"(default {_default('liveness_planar_max_error'):g}): fewer "
                                                   "photos caught by the turn challenge"))
    found.extend(_looser_quality_gates(s))
    if s.door_name_completion:
        found.append(("door_name_completion", "door_name_completion is on: the door shows visitors who is enrolled"))
    if spec is not None and threshold is not None:
        from faceapp.threshold_guard import assess

        risk = assess(spec, threshold)
        if risk.risky or threshold > risk.calibrated + 1e-9:
            words = risk.warning() or (f"threshold {threshold:.3f} is looser than the model's calibrated "
                                       f"{risk.calibrated:.3f}; {risk.figures()}")
            found.append(("threshold", words))
    out = []
    for name, text in found:
        source = setting_source(name, getattr(s, name))
        if name == "threshold" and not source and s.threshold is not None:
            source = "--threshold or the caller's settings"
        out.append(Weakening(name, text, source))
    return out


def report_weaker_settings(settings: Any, *, spec: Any = None, threshold: float | None = None,
                           log_event: Callable[..., Any] | None = None, door: str = "door",
                           task: Callable[[Callable[[], Any]], Any] | None = None) -> list[Weakening]:
    """:func:`weaker_settings`, logged: one warning line and one :data:`SETTINGS_EVENT` event
    through ``log_event(kind, detail=...)`` (best effort: a failure is logged, the door still
    starts). ``task(fn)``: run the write there (the kiosk's worker) instead of here. Returns
    the weakenings ([] logs nothing)."""
    weak = weaker_settings(settings, spec=spec, threshold=threshold)
    if not weak:
        return weak
    detail = f"{door} started with settings weaker than the defaults: " + "; ".join(w.line() for w in weak)
    log.warning("%s", detail)
    if log_event is not None:
        def write() -> None:
            try:
                log_event(SETTINGS_EVENT, detail=detail)
            except Exception as exc:  # the door's own log path reports a store that does not answer
                log.error("door settings event not logged (%s: %s)", type(exc).__name__, exc)

        (task or (lambda fn: fn()))(write)
    return weak


def uncalibrated(rule: Any) -> bool:
    """True when the door's recognize rule has no calibration curve (None counts as none)."""
    return rule is None or getattr(rule, "curve", None) is None


def recognize_refusal(rule: Any, people: int | None, *, model: str = "") -> str | None:
    """Why recognize mode must not run, or None: a rule without a calibration curve (the
    model has none: its 1:1 threshold would judge every gallery size) with more than one
    person enrolled. ``rule``: the door's :class:`faceapp.match.open_set.OpenSetRule`."""
    if not uncalibrated(rule):
        return None
    if people is not None and people <= 1:
        return None
    who = f"{people} people" if people is not None else "an unknown number of people"
    name = f"model {model}" if model else "the model"
    return (f"recognize mode refused: {name} has no calibration curve, so its 1:1 threshold would judge all "
            f"{who} enrolled (at a 1:1 false-accept rate of 1e-3, a stranger is taken for someone in about 63% of "
            "attempts at 1,000 people); "
            "use verify mode, or a model with a calibration curve (e.g. dlib-resnet-v1)")


def check_recognize(rule: Any, people: int | None, *, model: str = "") -> None:
    """:func:`recognize_refusal` as a :class:`~faceapp.errors.ConfigError` (exit 11)."""
    why = recognize_refusal(rule, people, model=model)
    if why is not None:
        raise ConfigError(why)
