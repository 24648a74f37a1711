"""Threshold guard rails: the calibration curve stored in the model spec, the figures for a
threshold, and the CLI's one-line warning on a risky --threshold."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest

from faceapp.threshold_guard import FAR_WARN, CalibrationCurve, assess


def spec_with(curve, threshold=0.2):
    return SimpleNamespace(threshold=threshold, extra={"calibration": {"curve": curve}} if curve else {})


CURVE = {"threshold": [0.1, 0.2, 0.3], "far": [0.0, 0.004, 0.02], "tar": [0.5, 0.9, 1.0],
         "genuine_pairs": 10, "impostor_pairs": 1000}


def test_figures_between_the_stored_points_are_interpolated():
    curve = CalibrationCurve.from_spec(spec_with(CURVE))
    far, tar, inside = curve.at(0.25)
    assert (far, tar, inside) == (pytest.approx(0.012), pytest.approx(0.95), True)
    assert curve.at(0.9)[2] is False and curve.at(0.9)[0] == 0.02


def test_a_threshold_past_far_1e_2_is_risky_and_says_so():
    safe, risky = assess(spec_with(CURVE), 0.2), assess(spec_with(CURVE), 0.3)
    assert not safe.risky and safe.warning() == ""
    assert "about 1 stranger in 250" in safe.figures() and "90.0%" in safe.figures()
    assert risky.risky and risky.far > FAR_WARN
    assert risky.warning() == ("threshold 0.300 lets in about 1 stranger in 50 (FAR 2.0e-02, above 1e-02); "
                               "the model's calibrated value is 0.200")


def test_without_a_curve_only_a_looser_threshold_is_risky():
    assert not assess(spec_with(None), 0.15).risky
    loose = assess(spec_with(None), 0.3)
    assert loose.risky and loose.far is None and "never measured" in loose.warning()
    bad = dict(CURVE, threshold=[0.3, 0.2, 0.1])  # not increasing: not a curve
    assert CalibrationCurve.from_spec(spec_with(bad)) is None


def test_the_shipped_model_stores_its_curve_on_the_calibration_pairs():
    from faceapp.embed.weights import load_spec

    spec = load_spec("dlib-resnet-v1")
    curve = CalibrationCurve.from_spec(spec)
    assert curve is not None and curve.impostor_pairs == spec.extra["calibration"]["impostor_pairs"]
    assert "DevTrain" in curve.protocol
    far, tar, _ = curve.at(spec.threshold)  # the curve agrees with the calibration record it extends
    assert far <= spec.extra["calibration"]["far_target"] * 1.01
    assert tar == pytest.approx(spec.extra["calibration"]["tar_at_threshold"], abs=1e-3)
    assert np.all(np.diff(curve.far) >= 0) and np.all(np.diff(curve.tar) >= 0)
    assert assess(spec, 0.35).risky  # the value typed in the issue: most strangers get in


def test_the_cli_warns_on_a_risky_threshold_in_one_line(capsys):
    from faceapp.cli.main import _settings

    settings = _settings(argparse.Namespace(threshold="0.35", model="dlib-resnet-v1"))
    assert settings.threshold == 0.35
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("faceapp: warning: --threshold: threshold 0.350 lets in")
    _settings(argparse.Namespace(threshold="0.15", model="dlib-resnet-v1"))
    assert capsys.readouterr().err == ""
