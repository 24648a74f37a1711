"""Threshold calibration and verification metrics for face-pair distances.

Units and conventions used throughout this module
-------------------------------------------------
* ``distances``: one number per pair of faces, the **squared L2 distance** between the
  two unit-length face encodings, so every value lies in ``[0, 4]`` (0 = identical
  encodings, 2 = orthogonal, 4 = opposite). Smaller means more similar. Nothing here
  depends on that range, except that plots label their axes with it.
* ``same``: one boolean per pair, ``True`` when both faces belong to the same person
  (a *genuine* / positive pair), ``False`` otherwise (an *impostor* / negative pair).
* A pair is **accepted** (predicted "same person") iff ``distance <= threshold``. A
  threshold is therefore in the same unit as the distances (squared L2).
* ``FAR`` (false accept rate): fraction of different-person pairs that are accepted,
  in ``[0, 1]``.
* ``TAR`` (true accept rate): fraction of same-person pairs that are accepted, in
  ``[0, 1]``. ``FRR = 1 - TAR`` is the false reject rate.
* ``accuracy``: fraction of all pairs classified correctly, in ``[0, 1]``.

Everything except the two ``plot_*`` functions is pure numpy. The plot functions import
matplotlib lazily and draw on an Agg canvas (no pyplot, no GUI backend, no global state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "KFoldResult",
    "auc",
    "best_threshold",
    "eer",
    "evaluate_pairs",
    "kfold_accuracy",
    "clopper_pearson",
    "kfold_correct",
    "mcnemar_exact",
    "paired_comparison",
    "plot_distance_histograms",
    "plot_roc",
    "roc_curve",
    "tar_at_far",
    "threshold_at_far",
]

# Relative slack when comparing an empirical FAR (a ratio k / n_negatives) with a target,
# so that e.g. 3/10 counts as <= 0.3 whatever the rounding of the target's literal.
_FAR_RTOL = 1e-9


# --------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------


def _check_pairs(distances: Any, same: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(distances as float64, same as bool)`` after checking shapes and values."""
    d = np.asarray(distances, dtype=np.float64)
    s_raw = np.asarray(same)
    if d.ndim != 1:
        raise ValueError(f"distances must be one-dimensional, got shape {d.shape}")
    if s_raw.shape != d.shape:
        raise ValueError(
            f"distances and same must have the same length, got {d.shape} and {s_raw.shape}"
        )
    if d.size == 0:
        raise ValueError("no pairs given (distances is empty)")
    if not np.all(np.isfinite(d)):
        raise ValueError("distances must be finite (found NaN or infinity)")
    if s_raw.dtype == np.bool_:
        s = s_raw
    else:
        if not np.all(np.isin(s_raw, (0, 1))):
            raise ValueError("same must hold booleans (or 0/1)")
        s = s_raw.astype(bool)
    return d, s


def _require_both_classes(s: np.ndarray) -> tuple[int, int]:
    n_pos = int(np.count_nonzero(s))
    n_neg = int(s.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "need at least one same-person and one different-person pair "
            f"(got {n_pos} same, {n_neg} different)"
        )
    return n_pos, n_neg


def _check_far_target(far_target: float) -> float:
    far_target = float(far_target)
    if not (0.0 <= far_target <= 1.0):
        raise ValueError(f"far_target must be in [0, 1], got {far_target}")
    return far_target


# --------------------------------------------------------------------------------------
# ROC, AUC, EER, TAR@FAR
# --------------------------------------------------------------------------------------


def roc_curve(distances: Any, same: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of a distance-based verifier, over every distinct threshold.

    Args:
        distances: squared L2 distances, one per pair (1-D, finite).
        same: booleans (or 0/1), True for same-person pairs. Both classes must occur.

    Returns:
        ``(far, tar, thresholds)``, three float64 arrays of equal length ``m + 1`` where
        ``m`` is the number of distinct distances. ``thresholds`` is increasing:
        ``thresholds[0]`` is the largest float below the smallest distance (accepts
        nothing: the point ``(far, tar) = (0, 0)``), and ``thresholds[i]`` for
        ``i >= 1`` is the ``i``-th smallest distinct distance. ``far[i]`` / ``tar[i]``
        are the fractions of different-/same-person pairs with
        ``distance <= thresholds[i]``; both are non-decreasing and the last point,
        at the largest distance, is ``(1, 1)``. Tied distances of both classes give one
        diagonal step.
    """
    d, s = _check_pairs(distances, same)
    n_pos, n_neg = _require_both_classes(s)
    order = np.argsort(d, kind="mergesort")
    d_sorted = d[order]
    s_sorted = s[order]
    tp_cum = np.cumsum(s_sorted)
    fp_cum = np.cumsum(~s_sorted)
    # Index of the last pair of each run of equal distances.
    last = np.r_[d_sorted[1:] != d_sorted[:-1], True]
    thr = d_sorted[last]
    far = np.r_[0.0, fp_cum[last] / n_neg]
    tar = np.r_[0.0, tp_cum[last] / n_pos]
    thresholds = np.r_[np.nextafter(thr[0], -np.inf), thr]
    return far.astype(np.float64), tar.astype(np.float64), thresholds.astype(np.float64)


def auc(far: Any, tar: Any) -> float:
    """Area under a ROC curve (trapezoidal rule), unitless in ``[0, 1]``.

    Args:
        far: false accept rates, non-decreasing (as returned by :func:`roc_curve`).
        tar: true accept rates at the same points.

    The area is measured over the FAR range the points cover, so pass a full curve from
    (0, 0) to (1, 1) (as :func:`roc_curve` returns) to get the usual AUC.
    """
    x = np.asarray(far, dtype=np.float64)
    y = np.asarray(tar, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"far and tar must be 1-D and of equal length, got {x.shape}, {y.shape}")
    if x.size < 2:
        raise ValueError("need at least two ROC points to compute an area")
    dx = np.diff(x)
    if np.any(dx < 0):
        raise ValueError("far must be non-decreasing")
    return float(np.sum(dx * (y[1:] + y[:-1]) / 2.0))


def eer(distances: Any, same: Any) -> tuple[float, float]:
    """Equal error rate: the rate where FAR equals FRR (= 1 - TAR).

    The ROC points of :func:`roc_curve` are joined by straight lines; the EER is where
    that polyline crosses FAR = FRR, and the returned threshold is interpolated linearly
    (in squared L2 units) between the two thresholds of the crossing segment. If a ROC
    point lies exactly on FAR = FRR, its own threshold is returned (the first such point).

    Returns:
        ``(eer, threshold)``: the EER as a fraction in ``[0, 1]`` and the squared L2
        distance at which it occurs. A perfectly separable set gives ``eer == 0`` with
        the threshold at the largest same-person distance.
    """
    far, tar, thr = roc_curve(distances, same)
    g = far - (1.0 - tar)  # FAR - FRR: -1 at the first point, +1 at the last, non-decreasing
    i = int(np.argmax(g >= 0.0))  # first point at or past the crossing (exists: g[-1] = 1)
    if g[i] == 0.0:
        return float(far[i]), float(thr[i])
    g0, g1 = g[i - 1], g[i]  # g0 < 0 < g1, and i >= 1 because g[0] = -1
    t = -g0 / (g1 - g0)
    rate = far[i - 1] + t * (far[i] - far[i - 1])
    threshold = thr[i - 1] + t * (thr[i] - thr[i - 1])
    return float(rate), float(threshold)


def tar_at_far(distances: Any, same: Any, far_target: float) -> tuple[float, float]:
    """TAR at the largest threshold whose empirical FAR is at most ``far_target``.

    Candidate thresholds are those of :func:`roc_curve` (the distinct distances, plus
    "accept nothing"). The chosen threshold is the largest candidate with
    ``FAR <= far_target``; it is also the one with the highest TAR under that constraint.

    When ``far_target < 1 / n_different_pairs`` (including ``far_target == 0``), only
    FAR = 0 qualifies: the threshold is the largest distance strictly below the smallest
    different-person distance, so the TAR is the fraction of same-person pairs closer than
    every different-person pair. If no pair is closer than the closest different-person
    pair, the threshold is the "accept nothing" one (just below the smallest distance)
    and the TAR is 0. Such an estimate is only an upper bound on the real FAR; a
    meaningful TAR@FAR needs well over ``1 / far_target`` different-person pairs.

    Args:
        distances: squared L2 distances, one per pair.
        same: True for same-person pairs.
        far_target: the allowed false accept rate, in ``[0, 1]``.

    Returns:
        ``(tar, threshold)``: TAR in ``[0, 1]`` and the threshold in squared L2 units.
    """
    far_target = _check_far_target(far_target)
    far, tar, thr = roc_curve(distances, same)
    limit = far_target * (1.0 + _FAR_RTOL)
    i = int(np.searchsorted(far, limit, side="right")) - 1  # far[0] = 0 so i >= 0
    return float(tar[i]), float(thr[i])


def threshold_at_far(distances: Any, same: Any, far_target: float) -> float:
    """The threshold (squared L2) chosen by :func:`tar_at_far` for ``far_target``."""
    return tar_at_far(distances, same, far_target)[1]


# --------------------------------------------------------------------------------------
# Accuracy: best threshold and k-fold protocol
# --------------------------------------------------------------------------------------


def _accuracy_at(d: np.ndarray, s: np.ndarray, threshold: float) -> float:
    return float(np.mean((d <= threshold) == s))


def best_threshold(distances: Any, same: Any) -> tuple[float, float]:
    """The threshold that maximises accuracy on the given pairs.

    Accuracy only changes when the threshold crosses a distance, so with ``u_0 < ... <
    u_{m-1}`` the distinct distances the candidate intervals are ``(-inf, u_0)``,
    ``[u_0, u_1)``, ..., ``[u_{m-1}, +inf)``. Runs of adjacent intervals with equal
    accuracy are merged; among the runs with the best accuracy the widest one is taken
    (the first, i.e. lowest, on a tie of widths, compared up to float rounding), and
    the threshold is the middle of it.
    For a single best interval ``[u_j, u_{j+1})`` this is the midpoint
    ``(u_j + u_{j+1}) / 2``. Unbounded ends are clipped to the data range
    ``[u_0, u_{m-1}]`` (widths are measured after clipping too); a best run that is only
    ``(-inf, u_0)`` gives the largest float below ``u_0`` (accept nothing) and one that is
    only ``[u_{m-1}, +inf)`` gives ``u_{m-1}`` (accept everything).

    Works with a single class too (then accepting all or nothing is best).

    Returns:
        ``(threshold, accuracy)``: the threshold in squared L2 units and the accuracy
        (fraction of pairs correct, in ``[0, 1]``) it reaches on these pairs.
    """
    d, s = _check_pairs(distances, same)
    n = d.size
    n_neg = int(n - np.count_nonzero(s))
    order = np.argsort(d, kind="mergesort")
    d_sorted = d[order]
    s_sorted = s[order]
    last = np.r_[d_sorted[1:] != d_sorted[:-1], True]
    u = d_sorted[last]
    m = u.size
    tp = np.r_[0, np.cumsum(s_sorted)[last]]  # accepted positives in interval j (0..m)
    fp = np.r_[0, np.cumsum(~s_sorted)[last]]
    correct = tp + (n_neg - fp)  # exact integers, so ties compare exactly
    best = int(correct.max())
    is_best = correct == best
    # Interval j is [lo_j, hi_j) with lo_0 = -inf and hi_m = +inf.
    lo = np.r_[-np.inf, u]
    hi = np.r_[u, np.inf]

    # Runs of consecutive best intervals.
    runs: list[tuple[float, float, float]] = []  # (clipped width, lo, hi)
    j = 0
    while j <= m:
        if not is_best[j]:
            j += 1
            continue
        k = j
        while k + 1 <= m and is_best[k + 1]:
            k += 1
        run_lo, run_hi = lo[j], hi[k]
        width = min(run_hi, u[-1]) - max(run_lo, u[0])
        runs.append((max(width, 0.0), run_lo, run_hi))
        j = k + 1
    # Widest run; on a tie (up to float rounding of the widths) the first, i.e. lowest.
    widest = max(r[0] for r in runs)
    tol = 1e-9 * max(1.0, abs(float(u[0])), abs(float(u[-1])))
    _, run_lo, run_hi = next(r for r in runs if r[0] >= widest - tol)

    lo_c = max(run_lo, u[0])
    hi_c = min(run_hi, u[-1])
    if lo_c < hi_c:
        threshold = (lo_c + hi_c) / 2.0
        if threshold >= run_hi:  # adjacent floats: the midpoint rounded up onto run_hi
            threshold = lo_c
    elif run_lo == -np.inf and run_hi != np.inf:  # only (-inf, u_0): accept nothing
        threshold = float(np.nextafter(u[0], -np.inf))
    else:  # only [u_{m-1}, inf), or a single distinct distance: accept everything
        threshold = float(u[-1])
    return float(threshold), best / n


@dataclass(frozen=True)
class KFoldResult:
    """Result of :func:`kfold_accuracy`.

    Attributes:
        mean_accuracy: mean over folds of the held-out accuracy, in ``[0, 1]``.
        std: population standard deviation (ddof=0) of the per-fold accuracies, as
            reported in the LFW literature (it is not the standard error).
        fold_accuracies: held-out accuracy of each fold, in the order of ``fold_ids``.
        fold_thresholds: threshold (squared L2) used for each fold, chosen by
            :func:`best_threshold` on all the *other* folds.
        fold_ids: the fold labels, sorted.
    """

    mean_accuracy: float
    std: float
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]
    fold_ids: tuple[int, ...]


def _fold_labels(folds: int | Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        k = int(folds)
        if k < 2:
            raise ValueError(f"need at least 2 folds, got {k}")
        if k > n:
            raise ValueError(f"cannot split {n} pairs into {k} folds")
        return (np.arange(n) * k) // n
    labels = np.asarray(folds)
    if labels.shape != (n,):
        raise ValueError(
            f"folds must be an int or hold one fold label per pair ({n}), got shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("fold labels must be integers")
    if np.unique(labels).size < 2:
        raise ValueError("need at least 2 distinct folds")
    return labels.astype(np.int64)


def kfold_accuracy(
    distances: Any, same: Any, folds: int | Sequence[int] | np.ndarray
) -> KFoldResult:
    """Cross-validated verification accuracy (the LFW View 2 protocol).

    For each fold, the threshold is chosen with :func:`best_threshold` on the pairs of all
    the other folds, and the accuracy is measured on the pairs of that fold only.

    Args:
        distances: squared L2 distances, one per pair.
        same: True for same-person pairs.
        folds: either an int ``k`` -- the pairs, in the given order, are cut into ``k``
            contiguous folds of near-equal size (pair ``i`` goes to fold
            ``i * k // n``; for the 6000 pairs of LFW ``pairs.txt`` in file order this is
            exactly the 10 official folds of 600) -- or one integer fold label per pair
            (e.g. ``[p.fold for p in pairs]``). At least two folds are needed.
    """
    d, s = _check_pairs(distances, same)
    labels = _fold_labels(folds, d.size)
    ids = np.unique(labels)
    accs: list[float] = []
    thrs: list[float] = []
    for f in ids:
        test = labels == f
        thr, _ = best_threshold(d[~test], s[~test])
        accs.append(_accuracy_at(d[test], s[test], thr))
        thrs.append(thr)
    a = np.asarray(accs)
    return KFoldResult(
        mean_accuracy=float(a.mean()),
        std=float(a.std()),
        fold_accuracies=tuple(accs),
        fold_thresholds=tuple(thrs),
        fold_ids=tuple(int(f) for f in ids),
    )


def kfold_correct(distances: Any, same: Any, folds: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """Per pair, whether :func:`kfold_accuracy`'s decision is right: pair ``i`` of fold ``f``
    is judged with the threshold chosen on the other folds. Its mean over equal-sized folds is
    the k-fold accuracy."""
    d, s = _check_pairs(distances, same)
    labels = _fold_labels(folds, d.size)
    kf = kfold_accuracy(d, s, labels)
    thr = dict(zip(kf.fold_ids, kf.fold_thresholds, strict=True))
    return (d <= np.array([thr[int(f)] for f in labels])) == s


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under "A and B are equally good", each of the
    ``only_a + only_b`` pairs that exactly one of them gets right is A's with probability 1/2."""
    n, k = int(only_a) + int(only_b), min(int(only_a), int(only_b))
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * _binom_cdf(k, n, 0.5)))


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (no overflow for large n)."""
    from math import exp, lgamma, log, log1p

    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lp, lq = log(p), log1p(-p)
    logs = [lgamma(n + 1) - lgamma(i + 1) - lgamma(n - i + 1) + i * lp + (n - i) * lq for i in range(k + 1)]
    top = max(logs)
    return min(1.0, exp(top) * sum(exp(v - top) for v in logs))


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial proportion: ``k`` successes in ``n``."""
    if n <= 0:
        return 0.0, 1.0
    alpha = (1.0 - level) / 2

    def solve(f, target: float) -> float:  # f increasing in p on [0, 1]; bisection
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(lambda p: 1.0 - _binom_cdf(k - 1, n, p), alpha)  # P(X >= k) = alpha
    upper = 1.0 if k == n else solve(lambda p: -_binom_cdf(k, n, p), -alpha)  # P(X <= k) = alpha
    return float(lower), float(upper)


def paired_comparison(
    distances_a: Any,
    distances_b: Any,
    same: Any,
    folds: int | Sequence[int] | np.ndarray,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Is model B better than model A on these pairs, or is the difference noise?

    Both models scored the same pairs. Accuracy is each model's k-fold decision per pair; only
    the pairs that exactly one model gets right (``only_a`` + ``only_b`` = m of N) carry the
    difference, so the test and the interval are conditional on them: the exact McNemar test,
    and the accuracy difference (B - A) = (m / N) (2 theta - 1) with theta = only_b / m and its
    exact Clopper-Pearson 95% interval (consistent with the test: it holds 0 whenever p > 0.05
    and m is not tiny). TAR at FAR 1e-2 has no such closed form: its 95% interval comes from a
    paired, class-stratified bootstrap (``resamples``, seeded), which redraws the same-person
    and the different-person pairs with replacement, keeping their counts, and recomputes both
    models' TAR on each draw; with few different-person pairs (DevTest: 500, so FAR 1e-2 = 5
    accepted) it is a rough guide.

    Returns a JSON-serialisable dict: ``accuracy_a/_b``, ``tar_at_far_1e-2_a/_b``,
    ``only_a_correct``, ``only_b_correct``, ``mcnemar_p``, ``accuracy_diff`` and
    ``accuracy_diff_ci95``, ``tar_at_far_1e-2_diff`` and ``tar_at_far_1e-2_diff_ci95``,
    ``p_b_better_tar_at_far_1e-2`` (share of resamples where B is strictly better),
    ``resamples``, ``seed``.
    """
    da, s = _check_pairs(distances_a, same)
    db, _ = _check_pairs(distances_b, s)
    _require_both_classes(s)
    labels = _fold_labels(folds, s.size)
    ca, cb = kfold_correct(da, s, labels), kfold_correct(db, s, labels)
    only_a, only_b = int((ca & ~cb).sum()), int((cb & ~ca).sum())
    m, n = only_a + only_b, int(s.size)
    t_lo, t_hi = clopper_pearson(only_b, m)
    pos, neg = np.flatnonzero(s), np.flatnonzero(~s)
    rng = np.random.default_rng(seed)
    tar_d = np.empty(resamples)
    for r in range(resamples):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        tar_d[r] = tar_at_far(db[idx], s[idx], 1e-2)[0] - tar_at_far(da[idx], s[idx], 1e-2)[0]
    tar_a, tar_b = tar_at_far(da, s, 1e-2)[0], tar_at_far(db, s, 1e-2)[0]
    return {
        "pairs": int(s.size),
        "accuracy_a": float(ca.mean()),
        "accuracy_b": float(cb.mean()),
        "only_a_correct": only_a,
        "only_b_correct": only_b,
        "mcnemar_p": mcnemar_exact(only_a, only_b),
        "accuracy_diff": float(cb.mean() - ca.mean()),
        "accuracy_diff_ci95": [m / n * (2 * t_lo - 1), m / n * (2 * t_hi - 1)],
        "tar_at_far_1e-2_a": tar_a,
        "tar_at_far_1e-2_b": tar_b,
        "tar_at_far_1e-2_diff": float(tar_b - tar_a),
        "tar_at_far_1e-2_diff_ci95": [float(np.quantile(tar_d, 0.025)), float(np.quantile(tar_d, 0.975))],
        "p_b_better_tar_at_far_1e-2": float((tar_d > 0).mean()),
        "resamples": int(resamples),
        "seed": int(seed),
    }


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------

ACCURACY_PROTOCOL_KFOLD = "k-fold, threshold chosen on the other folds"
ACCURACY_PROTOCOL_BEST = "best threshold on the same pairs (optimistic)"


def evaluate_pairs(
    distances: Any, same: Any, folds: int | Sequence[int] | np.ndarray | None = None
) -> dict[str, Any]:
    """All verification metrics of a set of pairs, as a JSON-serialisable dict.

    Args:
        distances: squared L2 distances, one per pair.
        same: True for same-person pairs; both classes must occur.
        folds: None, or folds as accepted by :func:`kfold_accuracy`.

    Returns:
        A dict with exactly these keys (plain Python ``int`` / ``float`` / ``str`` /
        ``None``; rates and accuracies are fractions in ``[0, 1]``, thresholds and
        distances are squared L2):

        ``pairs``, ``same_pairs``, ``different_pairs`` (counts);
        ``accuracy`` -- with ``folds``, the k-fold mean accuracy (threshold chosen on the
        other folds), else the accuracy at the best threshold on these same pairs, which is
        optimistic; ``accuracy_protocol`` says which (``"k-fold, threshold chosen on the
        other folds"`` or ``"best threshold on the same pairs (optimistic)"``);
        ``accuracy_std`` (k-fold population std, or None without folds);
        ``auc``; ``eer``, ``eer_threshold``;
        ``tar_at_far_1e-2``, ``threshold_at_far_1e-2``, ``tar_at_far_1e-3``,
        ``threshold_at_far_1e-3`` (see :func:`tar_at_far` for small sets);
        ``threshold`` (:func:`best_threshold` over all pairs);
        ``distance_same_mean``, ``distance_different_mean``.
    """
    d, s = _check_pairs(distances, same)
    n_pos, n_neg = _require_both_classes(s)
    far, tar, _ = roc_curve(d, s)
    thr_all, acc_all = best_threshold(d, s)
    if folds is not None:
        kf = kfold_accuracy(d, s, folds)
        accuracy, accuracy_std, protocol = kf.mean_accuracy, kf.std, ACCURACY_PROTOCOL_KFOLD
    else:
        accuracy, accuracy_std, protocol = acc_all, None, ACCURACY_PROTOCOL_BEST
    eer_rate, eer_thr = eer(d, s)
    tar2, thr2 = tar_at_far(d, s, 1e-2)
    tar3, thr3 = tar_at_far(d, s, 1e-3)
    return {
        "pairs": int(d.size),
        "same_pairs": n_pos,
        "different_pairs": n_neg,
        "accuracy": float(accuracy),
        "accuracy_protocol": protocol,
        "accuracy_std": None if accuracy_std is None else float(accuracy_std),
        "auc": auc(far, tar),
        "eer": eer_rate,
        "eer_threshold": eer_thr,
        "tar_at_far_1e-2": tar2,
        "threshold_at_far_1e-2": thr2,
        "tar_at_far_1e-3": tar3,
        "threshold_at_far_1e-3": thr3,
        "threshold": thr_all,
        "distance_same_mean": float(d[s].mean()),
        "distance_different_mean": float(d[~s].mean()),
    }


# --------------------------------------------------------------------------------------
# Plots (matplotlib, Agg canvas, imported lazily)
# --------------------------------------------------------------------------------------

_ROC_FAR_MIN = 1e-4


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _as_curve(label: str, value: Any) -> tuple[np.ndarray, np.ndarray, float]:
    if isinstance(value, Mapping):
        if "far" not in value or "tar" not in value:
            raise ValueError(f"curve {label!r}: a mapping needs 'far' and 'tar' keys")
        far, tar = value["far"], value["tar"]
        area = value.get("auc")
    elif isinstance(value, (tuple, list)) and len(value) in (2, 3):
        far, tar = value[0], value[1]
        area = None
    else:
        raise ValueError(
            f"curve {label!r}: expected (far, tar[, thresholds]) or a mapping with 'far' and 'tar'"
        )
    far = np.asarray(far, dtype=np.float64)
    tar = np.asarray(tar, dtype=np.float64)
    if area is None:
        area = auc(far, tar)
    return far, tar, float(area)


def plot_roc(results_or_curves: Any, path: str | Path, title: str = "ROC") -> Path:
    """Draw one or more ROC curves to a PNG file and return its path.

    Args:
        results_or_curves: one curve or a mapping ``{label: curve}``. A curve is the
            ``(far, tar)`` or ``(far, tar, thresholds)`` tuple of :func:`roc_curve`, or a
            mapping with ``"far"`` and ``"tar"`` (and optionally ``"auc"``; otherwise it
            is computed from the points).
        path: the PNG to write (parent folders are created).
        title: the plot title.

    The x axis is FAR on a log scale from 1e-4 to 1; points with FAR below 1e-4
    (including FAR = 0) are drawn at 1e-4. The y axis is TAR from 0 to 1. The legend
    gives each curve's AUC.
    """
    if isinstance(results_or_curves, Mapping) and not (
        "far" in results_or_curves and "tar" in results_or_curves
    ):
        items = list(results_or_curves.items())
    else:
        items = [("ROC", results_or_curves)]
    if not items:
        raise ValueError("no curves to plot")
    fig = _new_figure(6.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    for label, value in items:
        far, tar, area = _as_curve(str(label), value)
        ax.plot(np.maximum(far, _ROC_FAR_MIN), tar, label=f"{label} (AUC = {area:.4f})")
    ax.set_xscale("log")
    ax.set_xlim(_ROC_FAR_MIN, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("FAR (fraction of different-person pairs accepted)")
    ax.set_ylabel("TAR (fraction of same-person pairs accepted)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_distance_histograms(
    distances: Any,
    same: Any,
    path: str | Path,
    threshold: float | None = None,
    bins: int = 50,
) -> Path:
    """Histograms of same-person vs different-person distances, saved as a PNG.

    Both histograms share the same bins over the data range and are normalised to unit
    area (densities), so classes of different sizes compare. With ``threshold`` (squared
    L2) a vertical line marks it. Returns the path written (parent folders are created).
    """
    d, s = _check_pairs(distances, same)
    lo, hi = float(d.min()), float(d.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bins) + 1)
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    if np.any(s):
        ax.hist(d[s], bins=edges, density=True, alpha=0.55, color="tab:green",
                label=f"same person ({int(np.count_nonzero(s))})")
    if np.any(~s):
        ax.hist(d[~s], bins=edges, density=True, alpha=0.55, color="tab:red",
                label=f"different people ({int(np.count_nonzero(~s))})")
    if threshold is not None:
        ax.axvline(float(threshold), color="black", linestyle="--",
                   label=f"threshold = {float(threshold):.3f}")
    ax.set_xlabel("squared L2 distance between unit encodings")
    ax.set_ylabel("density")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return _save(fig, path)
