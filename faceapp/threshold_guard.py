"""What a threshold means for a model: its false and true accept rates, and when to warn.

A model's spec stores its calibration curve (``"calibration" -> "curve"``: FAR and TAR per
threshold on the held-out calibration pairs, written by ``scripts/calibration_curve.py``).
:func:`assess` reads it for a threshold: the settings page shows the figures for the value being
typed, and both it and the CLI's ``--threshold`` warn when the FAR passes :data:`FAR_WARN`
(one stranger in a hundred), the GUI asking for a confirmation before it saves.

Qt-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

FAR_WARN = 1e-2  # above this false accept rate a threshold is a risk worth a warning


@dataclass(frozen=True)
class CalibrationCurve:
    """FAR and TAR at increasing thresholds (squared L2 distances), as measured on
    ``impostor_pairs`` / ``genuine_pairs`` held-out pairs."""

    threshold: np.ndarray
    far: np.ndarray
    tar: np.ndarray
    protocol: str = ""
    genuine_pairs: int = 0
    impostor_pairs: int = 0

    @classmethod
    def from_spec(cls, spec: Any) -> CalibrationCurve | None:
        """The curve stored in a :class:`faceapp.embed.weights.WeightsSpec` (None when it has none
        or it is malformed)."""
        calibration = (getattr(spec, "extra", None) or {}).get("calibration")
        curve = calibration.get("curve") if isinstance(calibration, dict) else None
        if not isinstance(curve, dict):
            return None
        try:
            t = np.asarray(curve["threshold"], np.float64)
            far = np.asarray(curve["far"], np.float64)
            tar = np.asarray(curve["tar"], np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if t.ndim != 1 or t.size < 2 or far.shape != t.shape or tar.shape != t.shape:
            return None
        if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0) and np.all((far >= 0) & (far <= 1))
                and np.all((tar >= 0) & (tar <= 1))):
            return None
        return cls(t, far, tar, str(curve.get("protocol", "")), int(curve.get("genuine_pairs", 0)),
                   int(curve.get("impostor_pairs", 0)))

    def at(self, threshold: float) -> tuple[float, float, bool]:
        """(FAR, TAR, inside) at ``threshold``, linearly between the stored points; outside the
        curve's range the nearest end's figures, with ``inside`` False."""
        x = float(threshold)
        inside = bool(self.threshold[0] <= x <= self.threshold[-1])
        return float(np.interp(x, self.threshold, self.far)), float(np.interp(x, self.threshold, self.tar)), inside


@dataclass(frozen=True)
class ThresholdRisk:
    """What a threshold means for a model. ``far`` / ``tar`` are None when the model has no
    curve. ``risky``: the FAR is above :data:`FAR_WARN` (or unknown and looser than the
    calibrated value)."""

    threshold: float
    calibrated: float
    far: float | None
    tar: float | None
    risky: bool
    inside: bool = True

    def figures(self) -> str:
        """One sentence for the settings page."""
        if self.far is None or self.tar is None:
            return (f"At {self.threshold:.3f}: no measured error rates for this model (only its calibrated "
                    f"value {self.calibrated:.3f} was measured).")
        edge = "" if self.inside else " (beyond the measured range: at least this)"
        return (f"At {self.threshold:.3f}: {_strangers(self.far)} (FAR {self.far:.1e}){edge}; "
                f"{self.tar:.1%} of enrolled people's attempts accepted (TAR).")

    def warning(self) -> str:
        """One line: why this threshold is a risk ("" when it is not)."""
        if not self.risky:
            return ""
        if self.far is None:
            return (f"threshold {self.threshold:.3f} is looser than the model's calibrated {self.calibrated:.3f} and "
                    "its false accept rate was never measured")
        return (f"threshold {self.threshold:.3f} lets in {_strangers(self.far)} (FAR {self.far:.1e}, above "
                f"{FAR_WARN:.0e}); the model's calibrated value is {self.calibrated:.3f}")


def _strangers(far: float) -> str:
    if far <= 0:
        return "no stranger among the measured pairs"
    n = 1.0 / far
    if n < 1.5:
        return "nearly every stranger"
    return f"about 1 stranger in {_round(n):,}"


def _round(n: float) -> int:
    """Two significant figures: 1 in 1,300, not 1 in 1,287."""
    if n < 100:
        return int(round(n))
    digits = int(math.floor(math.log10(n))) - 1
    return int(round(n, -digits))


def assess(spec: Any, threshold: float) -> ThresholdRisk:
    """The risk of ``threshold`` for the model of ``spec`` (a WeightsSpec)."""
    calibrated = float(spec.threshold)
    curve = CalibrationCurve.from_spec(spec)
    if curve is None:
        return ThresholdRisk(float(threshold), calibrated, None, None, risky=float(threshold) > calibrated + 1e-9)
    far, tar, inside = curve.at(threshold)
    return ThresholdRisk(float(threshold), calibrated, far, tar, risky=far > FAR_WARN, inside=inside)
