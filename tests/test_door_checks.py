"""faceapp.door_checks.weaker_settings on the door's quality gates: a door that decides on faces
smaller, less certain, blurrier or darker than the defaults allow is a weakened door and says so."""

from __future__ import annotations

import pytest

from faceapp.config import Settings
from faceapp.door_checks import weaker_settings


def _names(settings: Settings) -> set[str]:
    return {w.name for w in weaker_settings(settings)}


def test_the_default_quality_gates_are_not_reported():
    assert _names(Settings()) == set()


@pytest.mark.parametrize(
    ("change", "name", "words"),
    [
        ({"min_face_size": 30}, "min_face_size", "min_face_size = 30 (default 60)"),
        ({"min_detection_score": 0.5}, "min_detection_score", "min_detection_score = 0.5 (default 0.9)"),
        ({"min_sharpness": 0.0}, "min_sharpness", "min_sharpness = 0 (default 12)"),
        ({"min_raw_brightness": 2.0}, "min_raw_brightness", "min_raw_brightness = 2 (default 12)"),
        ({"max_brightness": 250.0}, "max_brightness", "max_brightness = 250 (default 225)"),
        # without brightening, min_brightness is the darkest face decided on
        ({"brightness_normalize": False, "min_brightness": 5.0}, "min_brightness", "min_brightness = 5"),
    ],
)
def test_a_looser_quality_gate_is_a_weaker_door(change, name, words):
    weak = [w for w in weaker_settings(Settings(**change)) if w.name == name]
    assert len(weak) == 1, weaker_settings(Settings(**change))
    assert words in weak[0].line()


@pytest.mark.parametrize(
    "change",
    [
        {"min_face_size": 120},
        {"min_detection_score": 0.99},
        {"min_sharpness": 40.0},
        {"min_raw_brightness": 30.0},
        {"max_brightness": 200.0},
        {"brightness_normalize": False},  # then min_brightness (45) is the floor: stricter than 12
        {"brightness_normalize": False, "min_raw_brightness": 0.0},  # the raw floor is not used then
    ],
)
def test_stricter_quality_gates_are_not_reported(change):
    assert _names(Settings(**change)) == set()


def test_the_source_of_a_looser_gate_is_named(monkeypatch, tmp_path):
    from faceapp.config import load_settings

    monkeypatch.setenv("FACEAPP_SETTINGS", str(tmp_path / "door.toml"))
    (tmp_path / "door.toml").write_text("min_sharpness = 1.0\n")
    monkeypatch.setenv("FACEAPP_MIN_FACE_SIZE", "20")
    weak = {w.name: w for w in weaker_settings(load_settings())}
    assert weak["min_face_size"].source == "FACEAPP_MIN_FACE_SIZE"
    assert "door.toml" in weak["min_sharpness"].source
