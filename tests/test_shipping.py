"""The shipping rule's decision on hand-made distances (faceapp/evaluation/shipping.py)."""

from __future__ import annotations

import numpy as np

from faceapp.evaluation.shipping import decide
from faceapp.match.calibration import paired_comparison


def _pairs(n: int = 600, seed: int = 0):
    g = np.random.default_rng(seed)
    same = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    folds = np.tile(np.arange(10), n // 10)
    return g, same, folds


def _model(g, same, overlap: float) -> np.ndarray:
    """Distances whose classes overlap by ``overlap`` (more overlap = more errors)."""
    d = np.where(same, 0.3, 0.7) + g.normal(0, overlap, same.size)
    return d


def _cmp(a, b, same, folds):
    return paired_comparison(a, b, same, folds, resamples=50)


def test_a_clearly_better_candidate_ships() -> None:
    g, same, folds = _pairs()
    weak, strong = _model(g, same, 0.2), _model(g, same, 0.05)
    c = _cmp(weak, strong, same, folds)
    assert c["accuracy_b"] > c["accuracy_a"] and c["mcnemar_p"] < 0.05
    eq = _cmp(strong, strong + 1e-9, same, folds)  # a guard where it ties
    d = decide({"lfw-view2": {"default": c, "sface": c}, "tight": {"default": c}, "devtest": {"default": eq}})
    assert d.ship, d.reasons
    assert len(d.checked) == 4


def test_a_gain_that_is_noise_does_not_ship() -> None:
    g, same, folds = _pairs()
    a = _model(g, same, 0.15)
    b = a + g.normal(0, 0.01, a.size)  # an equally good model: a few borderline pairs change sides
    c = _cmp(a, b, same, folds)
    assert c["only_a_correct"] + c["only_b_correct"] > 0 and c["mcnemar_p"] >= 0.05
    d = decide({"lfw-view2": {"default": c}, "tight": {"default": c}})
    assert not d.ship
    assert any("not significantly better" in r or "not better" in r for r in d.reasons)


def test_significantly_worse_on_a_guard_blocks_it() -> None:
    g, same, folds = _pairs()
    weak, strong = _model(g, same, 0.2), _model(g, same, 0.05)
    better, worse = _cmp(weak, strong, same, folds), _cmp(strong, weak, same, folds)
    d = decide({"lfw-view2": {"default": better}, "tight": {"default": better}, "dark": {"default": worse}})
    assert not d.ship
    assert d.reasons and d.reasons[0].startswith("dark vs default") and "significantly worse" in d.reasons[0]


def test_a_missing_gate_is_a_reason_not_a_pass() -> None:
    g, same, folds = _pairs()
    c = _cmp(_model(g, same, 0.2), _model(g, same, 0.05), same, folds)
    d = decide({"lfw-view2": {"default": c}})
    assert not d.ship and "tight: not measured" in d.reasons
