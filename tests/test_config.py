"""Settings: defaults, file, environment, validation, round trip."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from faceapp.config import Settings, allowed, load_settings, override, render_settings, save_settings
from faceapp.errors import ConfigError


def test_defaults_are_valid_and_documented():
    s = Settings().validate()
    assert s.threshold is None and s.device == "auto"
    text = render_settings(s)
    assert "lower is stricter" in text and "# threshold = " in text


def test_file_then_environment_override(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text('threshold = 0.3\ncamera = "door.mp4"\ntop_k = 3\n')
    monkeypatch.setenv("FACEAPP_TOP_K", "7")
    monkeypatch.setenv("FACEAPP_DB", "sqlite:///x.db")
    s = load_settings(path)
    assert s.threshold == 0.3 and s.camera == "door.mp4"
    assert s.top_k == 7 and s.db_url == "sqlite:///x.db"


def test_save_and_load_round_trip(tmp_path, monkeypatch):
    for var in ("FACEAPP_DB", "FACEAPP_TOP_K", "FACEAPP_THRESHOLD"):
        monkeypatch.delenv(var, raising=False)
    s = Settings(threshold=0.42, camera="/videos/door.avi", liveness=True, door_frames=5)
    path = save_settings(s, tmp_path / "nested" / "settings.toml")
    assert load_settings(path) == s


@pytest.mark.parametrize(
    "content, message",
    [
        ("threshold = 7.0", "threshold"),
        ("liveness_turn_deg = 80.0", "liveness_turn_deg"),
        ("top_k = 0", "top_k"),
        ('device = "tpu"', "device"),
        ("colour = 1", "unknown setting"),
        ("threshold = [", "not valid TOML"),
        ('top_k = "many"', "invalid value"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "s.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env=False)


# -- strict parsing (issue 12) ----------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("FACEAPP_") and name not in ("FACEAPP_HOME", "FACEAPP_DATASETS", "FACEAPP_RESOURCES"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    "raw, expected",
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True), (" on ", True),
     ("false", False), ("False", False), ("0", False), ("no", False), ("OFF", False)],
)
def test_booleans_from_the_environment(clean_env, tmp_path, raw, expected):
    clean_env.setenv("FACEAPP_LIVENESS", raw)
    clean_env.setenv("FACEAPP_DOOR_TIMEOUT_S", "10")
    assert load_settings(tmp_path / "none.toml").liveness is expected


@pytest.mark.parametrize("raw", ["ture", "", "2", "y", "enabled", "-1", "1.0"])
def test_a_boolean_typo_is_an_error_naming_the_variable_value_and_choices(clean_env, tmp_path, raw):
    clean_env.setenv("FACEAPP_LIVENESS", raw)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "none.toml")
    msg = str(info.value)
    assert "liveness" in msg and "FACEAPP_LIVENESS" in msg and repr(raw) in msg
    assert "true/false, 1/0, yes/no or on/off" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "var, raw",
    [
        ("FACEAPP_DOOR_TIMEOUT_S", "-1"),
        ("FACEAPP_DOOR_TIMEOUT_S", "0"),
        ("FACEAPP_DOOR_TIMEOUT_S", "inf"),
        ("FACEAPP_DOOR_RESET_S", "0"),
        ("FACEAPP_THRESHOLD", "nan"),
        ("FACEAPP_THRESHOLD", "0"),
        ("FACEAPP_MIN_SHARPNESS", "-0.5"),
        ("FACEAPP_MIN_BRIGHTNESS", "300"),
        ("FACEAPP_MAX_IMAGE_SIDE", "100000"),
        ("FACEAPP_MIN_DETECTION_SCORE", "1.5"),
        ("FACEAPP_TOP_K", "3.5"),
        ("FACEAPP_TOP_K", "1_0"),
        ("FACEAPP_TOP_K", ""),
        ("FACEAPP_DEVICE", "cuda:x"),
        ("FACEAPP_CAMERA", "  "),
        ("FACEAPP_MODEL", ""),
        ("FACEAPP_THREADS", "-1"),
        ("FACEAPP_THREADS", "257"),
    ],
)
def test_out_of_range_values_are_errors_naming_what_is_allowed(clean_env, tmp_path, var, raw):
    clean_env.setenv(var, raw)
    name = var.removeprefix("FACEAPP_").lower()
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "none.toml")
    msg = str(info.value)
    assert msg.startswith(f"setting {name} has an invalid value {raw!r} (from {var}): allowed ")
    assert "\n" not in msg


def test_empty_threshold_means_the_calibrated_value(clean_env, tmp_path):
    clean_env.setenv("FACEAPP_THRESHOLD", "")
    assert load_settings(tmp_path / "none.toml").threshold is None


@pytest.mark.parametrize(
    "content, field, value",
    [
        ('liveness = "yes"', "liveness", True),
        ("liveness = 0", "liveness", False),
        ("top_k = 3.0", "top_k", 3),
        ("threshold = 1", "threshold", 1.0),
        ("camera = 2", "camera", "2"),
        ('device = "cuda:1"', "device", "cuda:1"),
    ],
)
def test_toml_values_that_mean_one_thing_are_accepted(tmp_path, content, field, value):
    path = tmp_path / "s.toml"
    path.write_text(content)
    got = getattr(load_settings(path, env=False), field)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "content",
    ["liveness = 2", 'liveness = "ture"', "top_k = true", "top_k = 3.7", "door_timeout_s = -1",
     "door_frames = 31", "threshold = true", "camera = true", "model = 3", "min_face_size = [60]"],
)
def test_toml_values_that_would_mean_something_else_are_refused(tmp_path, content):
    path = tmp_path / "s.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=False)
    name = content.split(" =")[0]
    assert str(info.value).startswith(f"setting {name} has an invalid value ")
    assert f"(from settings file {path})" in str(info.value)


@pytest.mark.parametrize("low, high", [(230.0, 225.0), (100.0, 100.0)])
def test_min_brightness_must_be_below_max_brightness(tmp_path, low, high):
    path = tmp_path / "s.toml"
    path.write_text(f"min_brightness = {low}\nmax_brightness = {high}\n")
    with pytest.raises(ConfigError, match="min_brightness must be below max_brightness"):
        load_settings(path, env=False)
    with pytest.raises(ConfigError, match="min_brightness"):
        Settings(min_brightness=low, max_brightness=high).validate()


@pytest.mark.parametrize(
    "changes",
    [{"liveness": "ture"}, {"top_k": True}, {"door_timeout_s": -1.0}, {"threshold": float("inf")},
     {"min_face_size": 60.5}, {"camera": 0}],
)
def test_python_callers_and_the_gui_save_path_get_the_same_checks(tmp_path, changes):
    # The settings page builds dataclasses.replace(saved, ...).validate(), then save_settings.
    edited = dataclasses.replace(Settings(), **changes)
    with pytest.raises(ConfigError, match=next(iter(changes))):
        edited.validate()
    with pytest.raises(ConfigError):
        save_settings(edited, tmp_path / "settings.toml")
    assert not (tmp_path / "settings.toml").exists()


def test_command_line_overrides_are_parsed_and_name_the_flag():
    s = override(Settings(), {"threshold": "0.25", "device": None}, {"threshold": "--threshold"})
    assert s.threshold == 0.25 and s.device == "auto"
    with pytest.raises(ConfigError, match=r"setting threshold has an invalid value '9' \(from --threshold\)"):
        override(Settings(), {"threshold": "9"}, {"threshold": "--threshold"})
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        override(Settings(), {"colour": "red"})


def test_an_unreadable_settings_path_is_an_error_naming_it(clean_env, tmp_path, monkeypatch):
    clean_env.setenv("FACEAPP_SETTINGS", str(tmp_path))  # a folder
    with pytest.raises(ConfigError, match=f"settings file {tmp_path} is a folder"):
        load_settings()
    long = tmp_path / ("s" * 1000 + ".toml")
    with pytest.raises(ConfigError, match="cannot be read: File name too long") as info:
        load_settings(long)
    assert f"({len(str(long))} characters)" in str(info.value) and len(str(info.value)) < 250
    locked = tmp_path / "locked.toml"
    locked.write_text("top_k = 3\n")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)  # chmod 000 does not stop root
    with pytest.raises(ConfigError, match=f"settings file {locked} cannot be read: permission denied"):
        load_settings(locked)


def test_a_missing_settings_file_means_the_defaults(clean_env, tmp_path):
    assert load_settings(tmp_path / "absent.toml") == Settings()


def test_every_setting_says_what_it_allows_and_the_rendered_file_loads_back(tmp_path):
    from dataclasses import fields

    s = Settings(threshold=0.3, liveness=True, door_timeout_s=12.5, camera="/v/door.mp4")
    text = render_settings(s)
    for f in fields(Settings):
        assert f"# allowed: {allowed(f.name)}" in text
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert load_settings(path, env=False) == s


def test_the_readme_settings_table_lists_every_setting_with_what_it_allows():
    from dataclasses import fields

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {r.split(" | ")[0].strip("| `"): r for r in readme.splitlines() if r.startswith("| `")}
    for f in fields(Settings):
        assert f" | {allowed(f.name)} | " in rows[f.name], f.name


# -- a threshold belongs to the model it was set for -------------------------------------------
# A threshold is a squared distance on one model's scale (dlib-resnet-v1's tau is 0.15, sface-v1's
# 1.26): a value chosen for one model and used with another can let everybody in.

def test_a_threshold_from_the_file_is_not_used_for_a_model_chosen_later(clean_env, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('model = "sface-v1"\nthreshold = 1.2\n')
    s = load_settings(path)
    assert s.threshold_for("sface-v1") == 1.2
    for later in (override(s, {"model": "dlib-resnet-v1"}), s.replace(model="dlib-resnet-v1")):
        assert later.model == "dlib-resnet-v1"
        assert later.threshold_for("dlib-resnet-v1") is None  # that model's calibrated value applies
        assert later.threshold_for("sface-v1") == 1.2
    clean_env.setenv("FACEAPP_MODEL", "dlib-resnet-v1")
    assert load_settings(path).threshold_for("dlib-resnet-v1") is None


def test_a_threshold_given_with_a_model_is_for_that_model(clean_env, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('model = "sface-v1"\nthreshold = 1.2\n')
    s = override(load_settings(path), {"model": "dlib-resnet-v1", "threshold": "0.1"})
    assert s.threshold_for("dlib-resnet-v1") == 0.1 and s.threshold_for("sface-v1") is None
    clean_env.setenv("FACEAPP_THRESHOLD", "0.12")  # the environment's threshold: for the model in force
    clean_env.setenv("FACEAPP_MODEL", "dlib-resnet-v1")
    assert load_settings(path).threshold_for("dlib-resnet-v1") == 0.12
    clean_env.delenv("FACEAPP_MODEL")
    assert load_settings(path).threshold_for("sface-v1") == 0.12


def test_the_model_a_threshold_was_set_for_is_saved_and_read_back(clean_env, tmp_path):
    s = Settings(model="sface-v1", threshold=1.2).replace(model="dlib-resnet-v1")
    assert s.threshold_model == "sface-v1"
    path = save_settings(s, tmp_path / "s.toml")
    back = load_settings(path)
    assert back == s and back.threshold_for("dlib-resnet-v1") is None and back.threshold_for("sface-v1") == 1.2


def test_the_engine_uses_its_own_models_threshold_when_the_saved_one_is_for_another(clean_env, tmp_path):
    from faceapp.embed.weights import load_spec
    from faceapp.pipeline import FaceEngine

    path = tmp_path / "s.toml"
    path.write_text('model = "sface-v1"\nthreshold = 1.2\n')
    s = load_settings(path)
    assert FaceEngine(s).threshold == 1.2
    dlib = load_spec("dlib-resnet-v1")
    assert FaceEngine(s.replace(model="dlib-resnet-v1")).threshold == pytest.approx(dlib.threshold)
    assert FaceEngine(s, spec=dlib).threshold == pytest.approx(dlib.threshold)  # an engine given another model's spec
