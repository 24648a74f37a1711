"""1:K decisions that stay safe as the gallery grows.

In recognize mode a stranger is compared with every enrolled person: with K people and a
per-comparison false-accept rate ``p`` at threshold ``t``, the chance that *some* wrong person
is within ``t`` is ``1 - (1 - p(t))**K`` -- with the 1:1 threshold (FAR 1e-3) and 1,000 people
that is 63%. :class:`OpenSetRule` turns a per-attempt false-accept target ``A`` and the gallery
size into the threshold ``t_K`` whose per-comparison FAR is ``1 - (1 - A)**(1/K)`` (about
``A / K``), read from the model's calibration curve (:class:`FarCurve`: the impostor distance
distribution on the calibration pairs, LFW DevTrain people, stored in the model spec). It
never goes above the threshold in force (``cap``, the 1:1 tau).

It also asks for a *margin*: the nearest person must be at least ``margin`` closer than the
second-nearest; two enrolled people who look alike are then told apart or not at all.

The curve's measured points resolve FARs down to about ``1 / impostor_pairs`` (1.4e-6 for
719,400 pairs), and below ~20 errors a point rests on a handful of pairs. Where fewer than
``min_errors`` impostor pairs fall under a threshold, the FAR comes from a probit fit of the
well-measured tail (``Phi^-1(FAR)`` is close to linear in the threshold there); see
:meth:`FarCurve.from_points`.

Pure numpy; distances are squared L2 between unit encodings (see :mod:`faceapp.match.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

_NORMAL = NormalDist()
_FAR_FLOOR = 1e-15  # FARs are clipped to this (the probit tail falls off very fast)


def per_comparison_far(attempt_far: float, people: int) -> float:
    """The per-comparison FAR ``p`` at which K = ``people`` comparisons give a chance of at most
    ``attempt_far`` that some wrong person is accepted: ``1 - (1 - A)**(1/K)``."""
    attempt_far = float(attempt_far)
    if not 0.0 < attempt_far < 1.0:
        raise ValueError(f"attempt_far must be in (0, 1), got {attempt_far}")
    people = max(1, int(people))
    return -math.expm1(math.log1p(-attempt_far) / people)


def attempt_far(comparison_far: float, people: int) -> float:
    """The chance that at least one of K = ``people`` impostor comparisons, each accepted with
    probability ``comparison_far``, is accepted: ``1 - (1 - p)**K``."""
    p = min(max(float(comparison_far), 0.0), 1.0)
    if p >= 1.0:
        return 1.0
    return -math.expm1(max(1, int(people)) * math.log1p(-p))


@dataclass(frozen=True)
class FarCurve:
    """Per-comparison FAR at increasing thresholds, with a probit tail below the measured part.

    ``thresholds`` increasing; ``far[i]`` the fraction of calibration impostor pairs with a
    distance <= ``thresholds[i]``; ``impostor_pairs`` how many there were. ``tail = (a, b)``:
    below ``tail_from`` the FAR is ``Phi(a + b t)``."""

    thresholds: np.ndarray
    far: np.ndarray
    impostor_pairs: int
    tail: tuple[float, float] | None = None
    tail_from: float = -math.inf
    source: str = ""

    @classmethod
    def from_points(cls, thresholds: Sequence[float], far: Sequence[float], impostor_pairs: int, *,
                    min_errors: int = 20, max_fit_far: float = 0.02, source: str = "") -> FarCurve:
        """A curve from measured points. The points with at least ``min_errors`` impostor pairs
        under them and a FAR of at most ``max_fit_far`` fix the probit tail (least squares of
        ``Phi^-1(FAR)`` on the threshold); below the first of them the tail replaces the
        measurement."""
        t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        f = np.asarray(far, dtype=np.float64).reshape(-1)
        if t.shape != f.shape or t.size < 2:
            raise ValueError("thresholds and far must be two equal-length lists of at least 2 points")
        if np.any(np.diff(t) <= 0) or np.any(np.diff(f) < 0) or np.any((f < 0) | (f > 1)):
            raise ValueError("thresholds must increase and far must be non-decreasing rates in [0, 1]")
        n = max(1, int(impostor_pairs))
        good = (f * n >= min_errors - 1e-6) & (f <= max_fit_far)
        tail, tail_from = None, -math.inf
        if good.sum() >= 2:
            z = np.array([_NORMAL.inv_cdf(float(x)) for x in f[good]])
            b, a = np.polyfit(t[good], z, 1)
            if b > 0:
                tail, tail_from = (float(a), float(b)), float(t[good][0])
        return cls(t, f, n, tail, tail_from, source)

    @classmethod
    def from_spec(cls, spec: Any) -> FarCurve | None:
        """The curve of a :class:`faceapp.embed.weights.WeightsSpec`: ``"calibration" -> "curve"``
        (``threshold`` and ``far`` lists and ``impostor_pairs``, written by
        ``scripts/calibration_curve.py``). None when the spec has none, or it is unusable."""
        calibration = (getattr(spec, "extra", None) or {}).get("calibration")
        curve = calibration.get("curve") if isinstance(calibration, dict) else None
        if not isinstance(curve, dict):
            return None
        try:
            return cls.from_points(curve["threshold"], curve["far"], int(curve["impostor_pairs"]),
                                   source=str(curve.get("protocol", "")))
        except (KeyError, TypeError, ValueError):
            return None

    def far_at(self, threshold: float) -> float:
        """The per-comparison FAR at ``threshold`` (interpolated in log FAR between points)."""
        t = float(threshold)
        if self.tail is not None and t < self.tail_from:
            a, b = self.tail
            return max(_NORMAL.cdf(a + b * t), _FAR_FLOOR)
        logf = np.log(np.maximum(self.far, _FAR_FLOOR))
        return float(np.exp(np.interp(t, self.thresholds, logf)))

    def threshold_at(self, far: float) -> float:
        """The largest threshold whose per-comparison FAR is at most ``far``."""
        far = float(far)
        if self.tail is not None:
            a, b = self.tail
            if far < self.far_at(self.tail_from):
                return (_NORMAL.inv_cdf(max(far, _FAR_FLOOR)) - a) / b
            start = int(np.searchsorted(self.thresholds, self.tail_from))
        else:
            start = 0
        t = self.thresholds[start:]
        logf = np.log(np.maximum(self.far[start:], _FAR_FLOOR))
        target = math.log(max(far, _FAR_FLOOR))
        if target <= logf[0]:
            return float(t[0])
        if target >= logf[-1]:
            return float(t[-1])
        i = int(np.searchsorted(logf, target, side="right"))  # logf[i-1] <= target < logf[i]
        lo, hi = logf[i - 1], logf[i]
        w = 0.0 if hi == lo else (target - lo) / (hi - lo)
        return float(t[i - 1] + w * (t[i] - t[i - 1]))


@dataclass(frozen=True)
class Reading:
    """What the rule says about one face: ``name`` when it is recognized, else None."""

    name: str | None
    distance: float | None  # to the nearest person
    threshold: float  # t_K in force for this gallery size
    second: float | None = None  # distance to the second-nearest person
    ambiguous: bool = False  # within t_K but not clear of the second-nearest by the margin

    @property
    def margin(self) -> float | None:
        return None if self.distance is None or self.second is None else self.second - self.distance


@dataclass(frozen=True)
class OpenSetRule:
    """Recognize-mode threshold from a per-attempt FAR target and the gallery size, plus a
    margin between the nearest and the second-nearest person.

    ``curve`` None (a model without a calibration curve): the threshold is ``cap`` whatever the
    gallery size; the margin still applies."""

    curve: FarCurve | None
    attempt_far: float = 1e-2
    margin: float = 0.0
    cap: float = math.inf

    def __post_init__(self) -> None:
        per_comparison_far(self.attempt_far, 1)  # checks the range
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")

    @classmethod
    def from_settings(cls, settings, spec, *, cap: float) -> OpenSetRule:
        """From :class:`faceapp.config.Settings` (``recognize_far``, ``recognize_margin``) and the
        model's spec (its calibration curve); ``cap``: the threshold in force."""
        return cls(FarCurve.from_spec(spec), float(settings.recognize_far), float(settings.recognize_margin), float(cap))

    def threshold(self, people: int) -> float:
        """t_K for a gallery of ``people`` people (at most ``cap``)."""
        if self.curve is None:
            return self.cap
        t = self.curve.threshold_at(per_comparison_far(self.attempt_far, max(1, int(people))))
        return min(self.cap, max(t, 0.0))

    def expected_attempt_far(self, people: int) -> float | None:
        """The per-attempt FAR the calibration curve predicts at t_K (for reports)."""
        if self.curve is None:
            return None
        return attempt_far(self.curve.far_at(self.threshold(people)), people)

    def read(self, candidates: Sequence[Any], people: int) -> Reading:
        """``candidates``: the nearest *people* (``.name``, ``.distance``), closest first, as
        :meth:`faceapp.match.gallery.Gallery.nearest` gives them."""
        tau = self.threshold(people)
        cands = list(candidates)
        if not cands:
            return Reading(None, None, tau)
        d1 = float(cands[0].distance)
        d2 = float(cands[1].distance) if len(cands) > 1 else None
        if not d1 <= tau:  # (written so that a NaN distance is never 'within tau')
            return Reading(None, d1, tau, d2)
        if d2 is not None and not d2 - d1 >= self.margin:  # a NaN second: no known margin
            return Reading(None, d1, tau, d2, ambiguous=True)
        return Reading(str(cands[0].name), d1, tau, d2)
