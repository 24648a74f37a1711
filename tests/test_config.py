"""Settings: defaults, file, environment, validation, round trip."""

from __future__ import annotations

import pytest

from faceapp.config import Settings, load_settings, render_settings, save_settings
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
