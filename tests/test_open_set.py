"""faceapp.match.open_set: the 1:K threshold from a per-attempt FAR target and the gallery size,
and the margin rule, on hand-made distances (no model, no data)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from faceapp.match.open_set import FarCurve, OpenSetRule, attempt_far, per_comparison_far
from faceapp.types import Candidate

N = NormalDist()


def test_per_comparison_far_is_the_inverse_of_the_attempt_far():
    assert per_comparison_far(1e-3, 1) == pytest.approx(1e-3)
    assert per_comparison_far(1e-3, 1000) == pytest.approx(1.0005e-6, rel=1e-3)  # about A / K
    for a, k in [(1e-3, 1), (1e-2, 63), (0.2, 5000), (1e-4, 10**6)]:
        assert attempt_far(per_comparison_far(a, k), k) == pytest.approx(a, rel=1e-9)
    # with the 1:1 FAR of 1e-3 and 1,000 people, a stranger matches someone 63% of the time
    assert attempt_far(1e-3, 1000) == pytest.approx(1 - 0.999**1000)
    with pytest.raises(ValueError):
        per_comparison_far(0.0, 10)


def _gaussian_curve(mu=0.45, sigma=0.1, pairs=10**6) -> FarCurve:
    t = np.round(np.arange(0.01, 0.61, 0.01), 2)
    far = np.array([N.cdf((x - mu) / sigma) for x in t])
    far = np.floor(far * pairs) / pairs  # what counting impostor pairs gives: 0 below the first one
    return FarCurve.from_points(t, far, pairs)


def test_the_curve_reads_far_and_threshold_both_ways_and_its_tail_extends_the_measured_part():
    c = _gaussian_curve()
    assert c.tail is not None
    a, b = c.tail
    assert (b, -a / b) == pytest.approx((10.0, 0.45), rel=2e-3)  # Phi((t - 0.45) / 0.1)
    for t in (0.30, 0.40, 0.50):  # measured part
        assert c.far_at(t) == pytest.approx(N.cdf((t - 0.45) / 0.1), rel=1e-2)
    # far below one pair in a million: the measured FAR is 0, the tail is not
    assert c.far_at(0.05) == pytest.approx(N.cdf(-4.0), rel=0.05)
    for far in (1e-9, 1e-6, 1e-4, 1e-2, 0.2):
        assert c.far_at(c.threshold_at(far)) == pytest.approx(far, rel=0.03)
    ts = [c.threshold_at(f) for f in (1e-9, 1e-7, 1e-5, 1e-3, 1e-1)]
    assert ts == sorted(ts)


def test_the_threshold_shrinks_as_the_gallery_grows_and_never_passes_the_cap():
    c = _gaussian_curve()
    rule = OpenSetRule(c, attempt_far=1e-2, cap=0.20)
    taus = [rule.threshold(k) for k in (1, 10, 100, 1000)]
    assert taus[0] == 0.20  # FAR 1e-2 for one person is at 0.217, above the cap: the cap
    assert all(a > b for a, b in zip(taus[1:], taus[2:]))
    assert max(taus) <= 0.20
    for k, t in zip((10, 100, 1000), taus[1:]):
        assert attempt_far(c.far_at(t), k) == pytest.approx(1e-2, rel=0.05)
        assert rule.expected_attempt_far(k) == pytest.approx(1e-2, rel=0.05)
    assert rule.threshold(10**6) == 0.0  # below the curve's reach: nobody is recognized
    assert OpenSetRule(None, 1e-2, cap=0.3).threshold(10**6) == 0.3  # no curve: the cap


def test_the_per_attempt_far_holds_on_simulated_galleries_of_strangers():
    """Strangers' distances drawn from the calibration distribution itself: an attempt is a false
    accept when any of the K enrolled people is within t_K. The rate stays at the target for every
    K, where the fixed 1:1 threshold lets ever more strangers in."""
    rng = np.random.default_rng(7)
    mu, sigma = 0.45, 0.1
    c = _gaussian_curve(mu, sigma)
    target, attempts = 0.05, 4000
    fixed = OpenSetRule(c, target).threshold(1)
    rule = OpenSetRule(c, target)
    for k in (1, 10, 100, 1000):
        # the smallest of K normal draws, by inverse transform of its CDF 1 - (1 - Phi(z))^K
        u = rng.random(attempts)
        nearest = mu + sigma * np.array([N.inv_cdf(-math.expm1(math.log1p(-x) / k)) for x in u])
        rate = float(np.mean(nearest <= rule.threshold(k)))
        assert abs(rate - target) < 4 * math.sqrt(target * (1 - target) / attempts), (k, rate)
        if k >= 10:
            assert np.mean(nearest <= fixed) > 2 * target


def test_the_margin_rule_names_only_a_clear_nearest_person():
    rule = OpenSetRule(None, 1e-3, margin=0.02, cap=0.15)
    r = rule.read([Candidate("ann", 0.08), Candidate("eve", 0.09)], 2)
    assert (r.name, r.ambiguous, r.distance, r.second) == (None, True, 0.08, 0.09)
    assert r.margin == pytest.approx(0.01)
    assert rule.read([Candidate("ann", 0.08), Candidate("eve", 0.10)], 2).name == "ann"  # margin exactly met
    assert rule.read([Candidate("ann", 0.08)], 1).name == "ann"  # nobody second
    far = rule.read([Candidate("ann", 0.16), Candidate("eve", 0.161)], 2)
    assert (far.name, far.ambiguous) == (None, False)  # not within tau at all: not 'ambiguous'
    assert rule.read([], 0).name is None
    assert OpenSetRule(None, 1e-3, margin=0.0, cap=0.15).read([Candidate("a", 0.08), Candidate("b", 0.08)], 2).name == "a"


def test_the_shipped_model_has_a_curve_and_a_sane_threshold_per_gallery_size():
    from faceapp.embed.weights import load_spec

    c = FarCurve.from_spec(load_spec("dlib-resnet-v1"))
    if c is None:
        pytest.skip("the spec has no calibration curve (scripts/calibration_curve.py --write)")
    rule = OpenSetRule(c, 1e-3, cap=0.15)
    assert rule.threshold(1) == pytest.approx(0.15, abs=0.005)  # tau itself is the FAR 1e-3 point
    assert 0.05 < rule.threshold(1000) < rule.threshold(63) < 0.15


def test_a_distance_that_is_not_a_number_names_nobody():
    """NaN compares false with everything: 'not above tau' must not read as 'within tau'."""
    rule = OpenSetRule(None, 1e-3, margin=0.02, cap=0.15)
    nan = float("nan")
    assert rule.read([Candidate("ann", nan)], 1).name is None
    assert rule.read([Candidate("ann", nan), Candidate("eve", 0.5)], 2).name is None
    r = rule.read([Candidate("ann", 0.05), Candidate("eve", nan)], 2)  # no known margin to the second
    assert (r.name, r.ambiguous) == (None, True)
