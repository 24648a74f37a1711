"""Tests of faceapp.match.calibration against hand-computed answers.

Convention: a pair is accepted ("same person") iff distance <= threshold.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from faceapp.match.calibration import (
    KFoldResult,
    auc,
    best_threshold,
    clopper_pearson,
    eer,
    evaluate_pairs,
    kfold_accuracy,
    kfold_correct,
    mcnemar_exact,
    paired_comparison,
    plot_distance_histograms,
    plot_roc,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)

# Interleaved: same 0.1, diff 0.2, same 0.3, diff 0.4.
INTERLEAVED_D = [0.3, 0.2, 0.4, 0.1]
INTERLEAVED_S = [True, False, False, True]

# Perfectly separable: same pairs all closer than every different pair.
SEPARABLE_D = [0.2, 1.4, 0.6, 1.0, 0.4, 2.0]
SEPARABLE_S = [1, 0, 1, 0, 1, 0]

# A tie between a same and a different pair at 0.3.
TIE_D = [0.1, 0.3, 0.3, 0.5]
TIE_S = [True, True, False, False]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _brute_auc(d, s):
    d, s = np.asarray(d, float), np.asarray(s, bool)
    pos, neg = d[s], d[~s]
    wins = (pos[:, None] < neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


# ------------------------------------------------------------------------------ roc/auc


def test_roc_interleaved_by_hand():
    far, tar, thr = roc_curve(INTERLEAVED_D, INTERLEAVED_S)
    np.testing.assert_allclose(far, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tar, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr[1:], [0.1, 0.2, 0.3, 0.4])
    assert thr[0] < 0.1 and thr[0] == np.nextafter(0.1, -np.inf)
    # AUC = P(same distance < different distance) = 3/4.
    assert auc(far, tar) == pytest.approx(0.75)


def test_roc_starts_at_origin_and_ends_at_one_one():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 4, 200)
    s = rng.random(200) < 0.4
    far, tar, thr = roc_curve(d, s)
    assert (far[0], tar[0]) == (0.0, 0.0)
    assert (far[-1], tar[-1]) == (1.0, 1.0)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)
    assert np.all(np.diff(thr) > 0)
    assert len(thr) == np.unique(d).size + 1


def test_separable_auc_one_eer_zero():
    far, tar, _ = roc_curve(SEPARABLE_D, SEPARABLE_S)
    assert auc(far, tar) == 1.0
    rate, thr = eer(SEPARABLE_D, SEPARABLE_S)
    assert rate == 0.0
    assert thr == pytest.approx(0.6)  # the largest same-person distance
    thr_best, acc = best_threshold(SEPARABLE_D, SEPARABLE_S)
    assert acc == 1.0
    assert thr_best == pytest.approx(0.8)  # middle of the gap [0.6, 1.0)


def test_tie_auc_counts_half():
    far, tar, thr = roc_curve(TIE_D, TIE_S)
    # The tie at 0.3 makes one diagonal step from (0, 0.5) to (0.5, 1).
    np.testing.assert_allclose(far, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tar, [0, 0.5, 1, 1])
    np.testing.assert_allclose(thr[1:], [0.1, 0.3, 0.5])
    assert auc(far, tar) == pytest.approx(0.875)  # (1 + 1 + 0.5 + 1) / 4


def test_auc_matches_mann_whitney_on_random_data_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(5, 300))
        d = np.round(rng.uniform(0, 4, n), 1)  # rounding creates many ties
        s = rng.random(n) < 0.5
        if s.all() or not s.any():
            continue
        far, tar, _ = roc_curve(d, s)
        assert auc(far, tar) == pytest.approx(_brute_auc(d, s), abs=1e-12)


def test_auc_rejects_decreasing_far():
    with pytest.raises(ValueError):
        auc([0, 0.5, 0.2, 1], [0, 0.5, 0.6, 1])


def test_roc_needs_both_classes_and_valid_input():
    with pytest.raises(ValueError, match="same-person"):
        roc_curve([0.1, 0.2], [True, True])
    with pytest.raises(ValueError):
        roc_curve([0.1, 0.2], [True])
    with pytest.raises(ValueError):
        roc_curve([0.1, float("nan")], [True, False])
    with pytest.raises(ValueError):
        roc_curve([], [])


def test_roc_accepts_zero_one_labels():
    a = roc_curve(INTERLEAVED_D, [1, 0, 0, 1])
    b = roc_curve(INTERLEAVED_D, INTERLEAVED_S)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------------ EER


def test_eer_exact_point():
    # At threshold 0.2: FAR = 1/2 (0.2 accepted), FRR = 1/2 (0.3 rejected).
    rate, thr = eer(INTERLEAVED_D, INTERLEAVED_S)
    assert rate == pytest.approx(0.5)
    assert thr == pytest.approx(0.2)


def test_eer_interpolated_on_vertical_segment():
    # same 0.1, 0.3, 0.5; different 0.2, 0.6.
    # thr 0.2: FAR 1/2, FRR 2/3; thr 0.3: FAR 1/2, FRR 1/3 -> crossing halfway.
    d = [0.1, 0.2, 0.3, 0.5, 0.6]
    s = [1, 0, 1, 1, 0]
    rate, thr = eer(d, s)
    assert rate == pytest.approx(0.5)
    assert thr == pytest.approx(0.25)


def test_eer_interpolated_on_tie_diagonal():
    # ROC segment (0, 0.5) -> (0.5, 1) crosses TAR = 1 - FAR at FAR = 0.25,
    # halfway between thresholds 0.1 and 0.3.
    rate, thr = eer(TIE_D, TIE_S)
    assert rate == pytest.approx(0.25)
    assert thr == pytest.approx(0.2)


# ------------------------------------------------------------------------------ TAR@FAR


def test_tar_at_far_by_hand():
    d, s = INTERLEAVED_D, INTERLEAVED_S
    assert tar_at_far(d, s, 0.5) == pytest.approx((1.0, 0.3))
    assert tar_at_far(d, s, 1.0) == pytest.approx((1.0, 0.4))
    # Below 1/n_different = 0.5: only FAR 0 qualifies -> just below the closest different pair.
    assert tar_at_far(d, s, 0.4) == pytest.approx((0.5, 0.1))
    assert tar_at_far(d, s, 0.0) == pytest.approx((0.5, 0.1))
    assert threshold_at_far(d, s, 0.5) == pytest.approx(0.3)


def test_tar_at_far_with_tie():
    assert tar_at_far(TIE_D, TIE_S, 0.4) == pytest.approx((0.5, 0.1))
    assert tar_at_far(TIE_D, TIE_S, 0.5) == pytest.approx((1.0, 0.3))


def test_tar_at_far_below_resolution_with_nothing_closer():
    # The closest pair is a different-person pair: FAR 0 means accepting nothing.
    d = [0.1, 0.5, 0.9]
    s = [False, True, False]
    tar, thr = tar_at_far(d, s, 1e-3)
    assert tar == 0.0
    assert thr < 0.1
    assert not np.any(np.asarray(d) <= thr)


def test_tar_at_far_exact_ratio_targets():
    # 10 different pairs: FAR 3/10 must count as <= 0.3.
    d = np.arange(11) / 10.0  # 0.0 same, 0.1..1.0 different
    s = np.r_[True, np.zeros(10, bool)]
    tar, thr = tar_at_far(d, s, 0.3)
    assert thr == pytest.approx(0.3)
    assert tar == 1.0


def test_tar_at_far_matches_brute_force():
    rng = np.random.default_rng(3)
    s = rng.random(400) < 0.5
    d = np.round(rng.normal(np.where(s, 0.8, 1.4), 0.3), 2)  # rounding creates ties
    for target in (0.0, 1e-3, 1e-2, 0.05, 0.2, 0.5, 1.0):
        tar, thr = tar_at_far(d, s, target)
        best = (0.0, -np.inf)
        for t in np.unique(d):
            f = np.mean(d[~s] <= t)
            if f <= target:
                best = max(best, (np.mean(d[s] <= t), t))
        if best[1] == -np.inf:
            assert tar == 0.0 and thr < d.min()
        else:
            assert (tar, thr) == pytest.approx(best)
        assert np.mean(d[~s] <= thr) <= target + 1e-12
        assert np.mean(d[s] <= thr) == pytest.approx(tar)


def test_far_target_out_of_range():
    with pytest.raises(ValueError):
        tar_at_far(INTERLEAVED_D, INTERLEAVED_S, 1.5)
    with pytest.raises(ValueError):
        threshold_at_far(INTERLEAVED_D, INTERLEAVED_S, -0.1)


# ------------------------------------------------------------------------------ best threshold


def test_best_threshold_ties_between_runs_take_the_first_of_equal_width():
    # Best intervals [0.1, 0.2) and [0.3, 0.4), both 3/4 correct and 0.1 wide.
    thr, acc = best_threshold(INTERLEAVED_D, INTERLEAVED_S)
    assert acc == pytest.approx(0.75)
    assert thr == pytest.approx(0.15)


def test_best_threshold_prefers_the_widest_best_interval():
    # same 0.1, 0.3; different 0.2, 0.7: best intervals [0.1, 0.2) and [0.3, 0.7).
    thr, acc = best_threshold([0.1, 0.2, 0.3, 0.7], [1, 0, 1, 0])
    assert acc == pytest.approx(0.75)
    assert thr == pytest.approx(0.5)


def test_best_threshold_merges_adjacent_equal_intervals():
    # [0.1, 0.3) and [0.3, 0.5) are both 3/4 correct -> one run [0.1, 0.5), middle 0.3.
    thr, acc = best_threshold(TIE_D, TIE_S)
    assert acc == pytest.approx(0.75)
    assert thr == pytest.approx(0.3)


def test_best_threshold_single_class():
    thr, acc = best_threshold([0.5, 1.0], [True, True])
    assert acc == 1.0 and thr >= 1.0
    thr, acc = best_threshold([0.5, 1.0], [False, False])
    assert acc == 1.0 and thr < 0.5


def test_best_threshold_accuracy_matches_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(20):
        n = int(rng.integers(2, 120))
        s = rng.random(n) < 0.5
        d = np.round(rng.normal(1.2, 0.4, n) - 0.5 * s, 1)
        thr, acc = best_threshold(d, s)
        cands = np.r_[d.min() - 1, d]
        brute = max(np.mean((d <= t) == s) for t in cands)
        assert acc == pytest.approx(brute)
        assert np.mean((d <= thr) == s) == pytest.approx(acc)


# ------------------------------------------------------------------------------ k-fold

# Fold 0: same 0.2, diff 1.0; fold 1: same 0.4, diff 1.2; fold 2: same 0.9, diff 0.8.
KF_D = [0.2, 1.0, 0.4, 1.2, 0.9, 0.8]
KF_S = [1, 0, 1, 0, 1, 0]
KF_FOLDS = [0, 0, 1, 1, 2, 2]


def test_kfold_by_hand():
    r = kfold_accuracy(KF_D, KF_S, KF_FOLDS)
    assert isinstance(r, KFoldResult)
    # Fold 0 trains on {0.4 s, 1.2 d, 0.9 s, 0.8 d}: best runs [0.4, 0.8) (wider) and
    #   [0.9, 1.2) -> 0.6; fold 0 is then all correct.
    # Fold 1 trains on {0.2 s, 1.0 d, 0.9 s, 0.8 d}: best runs [0.2, 0.8) and [0.9, 1.0)
    #   -> 0.5; fold 1 all correct.
    # Fold 2 trains on {0.2 s, 1.0 d, 0.4 s, 1.2 d}: gap [0.4, 1.0) -> 0.7; the same pair at
    #   0.9 is rejected, the different pair at 0.8 rejected: 1/2.
    assert r.fold_thresholds == pytest.approx((0.6, 0.5, 0.7))
    assert r.fold_accuracies == pytest.approx((1.0, 1.0, 0.5))
    assert r.fold_ids == (0, 1, 2)
    assert r.mean_accuracy == pytest.approx(5 / 6)
    assert r.std == pytest.approx(math.sqrt(1 / 18))


def test_kfold_int_splits_contiguously():
    a = kfold_accuracy(KF_D, KF_S, 3)
    b = kfold_accuracy(KF_D, KF_S, KF_FOLDS)
    assert a == b


def test_kfold_rejects_bad_folds():
    with pytest.raises(ValueError):
        kfold_accuracy(KF_D, KF_S, 1)
    with pytest.raises(ValueError):
        kfold_accuracy(KF_D, KF_S, [0] * 6)
    with pytest.raises(ValueError):
        kfold_accuracy(KF_D, KF_S, [0, 1])


def test_kfold_threshold_is_not_chosen_on_the_test_fold():
    # Each fold, taken alone, is perfectly separable, but the others disagree with it.
    d = [0.5, 0.6, 0.5, 0.6, 1.5, 1.6]
    s = [1, 0, 1, 0, 1, 0]
    r = kfold_accuracy(d, s, [0, 0, 1, 1, 2, 2])
    assert r.fold_accuracies[2] == 0.5  # threshold ~0.55 rejects the same pair at 1.5


# ------------------------------------------------------------------------------ evaluate_pairs

EXPECTED_KEYS = {
    "pairs", "same_pairs", "different_pairs", "accuracy", "accuracy_protocol", "accuracy_std",
    "auc", "eer", "eer_threshold", "tar_at_far_1e-2", "threshold_at_far_1e-2",
    "tar_at_far_1e-3", "threshold_at_far_1e-3", "threshold", "distance_same_mean",
    "distance_different_mean",
}


def test_evaluate_pairs_without_folds():
    r = evaluate_pairs(np.asarray(INTERLEAVED_D), np.asarray(INTERLEAVED_S))
    assert set(r) == EXPECTED_KEYS
    assert r["pairs"] == 4 and r["same_pairs"] == 2 and r["different_pairs"] == 2
    assert r["accuracy"] == pytest.approx(0.75)
    assert r["accuracy_protocol"] == "best threshold on the same pairs (optimistic)"
    assert r["accuracy_std"] is None
    assert r["auc"] == pytest.approx(0.75)
    assert r["eer"] == pytest.approx(0.5) and r["eer_threshold"] == pytest.approx(0.2)
    assert r["tar_at_far_1e-2"] == pytest.approx(0.5)
    assert r["threshold_at_far_1e-2"] == pytest.approx(0.1)
    assert r["tar_at_far_1e-3"] == pytest.approx(0.5)
    assert r["threshold"] == pytest.approx(0.15)
    assert r["distance_same_mean"] == pytest.approx(0.2)
    assert r["distance_different_mean"] == pytest.approx(0.3)
    for key, value in r.items():
        assert value is None or type(value) in (int, float, str), key
    json.loads(json.dumps(r, allow_nan=False))


def test_evaluate_pairs_with_folds():
    r = evaluate_pairs(KF_D, KF_S, folds=KF_FOLDS)
    assert set(r) == EXPECTED_KEYS
    assert r["accuracy_protocol"] == "k-fold, threshold chosen on the other folds"
    assert r["accuracy"] == pytest.approx(5 / 6)
    assert r["accuracy_std"] == pytest.approx(math.sqrt(1 / 18))
    json.loads(json.dumps(r, allow_nan=False))


def test_evaluate_pairs_separable():
    r = evaluate_pairs(SEPARABLE_D, SEPARABLE_S, folds=3)
    assert r["auc"] == 1.0 and r["eer"] == 0.0
    assert r["tar_at_far_1e-3"] == 1.0
    assert r["threshold_at_far_1e-3"] == pytest.approx(0.6)


def test_evaluate_pairs_json_safe_when_nothing_is_accepted_at_far_zero():
    r = evaluate_pairs([0.1, 0.5, 0.9], [False, True, False])
    assert r["tar_at_far_1e-3"] == 0.0
    assert math.isfinite(r["threshold_at_far_1e-3"])
    json.dumps(r, allow_nan=False)


# ------------------------------------------------------------------------------ plots


# ------------------------------------------------------------------------------ paired comparison


def test_mcnemar_exact_by_hand():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(4, 0) == pytest.approx(2 * 0.5**4)  # 0.125
    assert mcnemar_exact(0, 10) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(5, 5) == 1.0  # capped
    # 2 of 7: 2 * (1 + 7 + 21) / 128
    assert mcnemar_exact(2, 5) == pytest.approx(2 * 29 / 128)
    assert mcnemar_exact(5, 2) == mcnemar_exact(2, 5)
    assert mcnemar_exact(600, 700) == pytest.approx(0.00608, rel=0.02)  # large counts: no overflow
    assert mcnemar_exact(1000, 1000) == 1.0


def test_clopper_pearson_known_values():
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    lo, hi = clopper_pearson(0, 4)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 4), abs=1e-9)  # 0.6024
    lo, hi = clopper_pearson(5, 10)
    assert (lo, hi) == (pytest.approx(0.187086, abs=1e-5), pytest.approx(0.812914, abs=1e-5))
    lo, hi = clopper_pearson(29, 34)
    assert lo < 29 / 34 < hi and 0 < lo and hi < 1


def test_kfold_correct_mean_is_the_kfold_accuracy():
    rng = np.random.default_rng(3)
    same = np.repeat([True, False], 50)
    d = np.where(same, rng.normal(0.3, 0.15, 100), rng.normal(0.8, 0.15, 100))
    folds = np.arange(100) % 5
    ok = kfold_correct(d, same, folds)
    assert ok.dtype == bool and ok.shape == (100,)
    assert ok.mean() == pytest.approx(kfold_accuracy(d, same, folds).mean_accuracy)


def test_paired_comparison_of_a_model_with_itself_is_no_difference():
    rng = np.random.default_rng(0)
    same = np.repeat([True, False], 100)
    d = np.where(same, rng.normal(0.3, 0.2, 200), rng.normal(0.9, 0.2, 200))
    c = paired_comparison(d, d, same, np.arange(200) % 10, resamples=200)
    assert c["only_a_correct"] == c["only_b_correct"] == 0 and c["mcnemar_p"] == 1.0
    assert c["accuracy_diff"] == 0 and c["accuracy_diff_ci95"] == [0.0, 0.0]
    assert c["tar_at_far_1e-2_diff_ci95"] == [0.0, 0.0] and c["p_b_better_tar_at_far_1e-2"] == 0.0
    json.dumps(c)


def test_paired_comparison_sees_a_better_model_and_its_interval_holds_the_difference():
    rng = np.random.default_rng(1)
    same = np.repeat([True, False], 300)
    base = np.where(same, rng.normal(0.4, 0.2, 600), rng.normal(0.9, 0.2, 600))
    better = np.where(same, base - 0.1, base + 0.1)  # every pair moves the right way
    c = paired_comparison(base, better, same, np.arange(600) % 10, resamples=300)
    assert c["only_a_correct"] == 0 and c["only_b_correct"] > 10
    assert c["mcnemar_p"] < 1e-3
    lo, hi = c["accuracy_diff_ci95"]
    assert 0 < lo <= c["accuracy_diff"] <= hi
    assert c["accuracy_b"] > c["accuracy_a"] and c["tar_at_far_1e-2_b"] >= c["tar_at_far_1e-2_a"]
    # swapping the roles mirrors the answer
    r = paired_comparison(better, base, same, np.arange(600) % 10, resamples=300)
    assert r["accuracy_diff"] == pytest.approx(-c["accuracy_diff"]) and r["mcnemar_p"] == c["mcnemar_p"]
    assert r["accuracy_diff_ci95"] == pytest.approx([-hi, -lo])


def test_paired_comparison_checks_its_input():
    with pytest.raises(ValueError):
        paired_comparison([0.1, 0.2], [0.1], [True, False], 2)
    with pytest.raises(ValueError):
        paired_comparison([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [True, True, True], [0, 1, 0])


def test_plot_roc_writes_png(tmp_path):
    curve = roc_curve(INTERLEAVED_D, INTERLEAVED_S)
    far, tar, _ = roc_curve(SEPARABLE_D, SEPARABLE_S)
    out = plot_roc(
        {"interleaved": curve, "separable": {"far": far, "tar": tar, "auc": 1.0}},
        tmp_path / "sub" / "roc.png",
    )
    assert out.read_bytes()[:8] == PNG_MAGIC
    single = plot_roc(curve, tmp_path / "single.png")
    assert single.read_bytes()[:8] == PNG_MAGIC


def test_plot_histograms_writes_png(tmp_path):
    rng = np.random.default_rng(5)
    s = rng.random(300) < 0.5
    d = np.clip(rng.normal(np.where(s, 0.6, 1.4), 0.2), 0, 4)
    out = plot_distance_histograms(d, s, tmp_path / "hist.png", threshold=1.0)
    assert out.read_bytes()[:8] == PNG_MAGIC
    out2 = plot_distance_histograms(d, s, tmp_path / "hist2.png")
    assert out2.read_bytes()[:8] == PNG_MAGIC


def test_import_does_not_load_matplotlib_torch_or_qt():
    code = (
        "import sys, faceapp.match.calibration, faceapp.evaluation.protocols\n"
        "bad = [m for m in ('matplotlib', 'torch', 'PySide6') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
