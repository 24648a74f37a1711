"""LFW View 2 under the unrestricted protocol for models trained on LFW people.

LFW's README (section 2c): for fold i the training set is formed from the nine other sets of
``people.txt`` and the held-out fold's pairs of ``pairs.txt`` are the test. A model trained on
LFW people is therefore a different model for each fold, and everything that is learnt, the
verification threshold included, is learnt without fold i. Threshold rule used here (and
applied identically to a model that never saw LFW, where it reduces to the usual 10-fold
:func:`faceapp.match.calibration.kfold_accuracy`): the threshold of fold i is the best-accuracy
threshold on the pairs of the nine other folds **scored by fold i's model** (those folds' people
were in its training set, which the protocol allows: they are training data), and the accuracy
is measured on fold i's pairs scored by the same model.

AUC, EER and TAR at a FAR are pooled over the 6000 pairs, each pair scored by the model of its
own fold (:func:`pooled_distances`). Ten models have ten distance scales, so the pooled figures
are also given on calibrated distances (``calibrated``): each pair's distance divided by its fold
model's threshold, the one chosen on the other nine folds (the protocol's own training data), so
that every fold decides at 1.0 and the pooled curve compares like with like.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceapp.match.calibration import auc, best_threshold, evaluate_pairs, roc_curve

__all__ = ["fold_training_mask", "pooled_distances", "unrestricted_kfold"]


def fold_training_mask(row_people: Sequence[str], folds: Sequence, test_fold: int) -> np.ndarray:
    """Boolean mask over training rows (``row_people[r]`` = the LFW name of row r) keeping the
    rows whose person is in one of the other sets of ``people.txt`` and not in set ``test_fold``."""
    from faceapp.training.data import view2_training_people

    keep = view2_training_people(folds, test_fold)
    return np.fromiter((p in keep for p in row_people), dtype=bool, count=len(row_people))


def pooled_distances(dist_by_fold_model: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """(F, N) distances of all N pairs under each fold's model -> (N,): pair n scored by the
    model of its own fold ``folds[n]``."""
    d = np.asarray(dist_by_fold_model, np.float64)
    f = np.asarray(folds, np.int64)
    if d.ndim != 2 or d.shape[1] != f.size:
        raise ValueError(f"need (folds, pairs) distances for {f.size} pairs, got shape {d.shape}")
    ids = np.unique(f)
    if d.shape[0] != ids.size or not np.array_equal(ids, np.arange(ids.size)):
        raise ValueError(f"fold labels must be 0..{d.shape[0] - 1}, got {ids.tolist()}")
    return d[f, np.arange(f.size)]


def unrestricted_kfold(dist_by_fold_model: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """The unrestricted-protocol figures (see the module docstring).

    ``dist_by_fold_model[i, n]``: squared L2 distance of pair n under fold i's model (a model
    that never saw LFW: the same row ten times, ``np.tile(d, (10, 1))``). Returns the
    :func:`faceapp.match.calibration.evaluate_pairs` keys of the pooled distances, with
    ``accuracy`` / ``accuracy_std`` replaced by the per-fold-model k-fold figures, plus
    ``fold_accuracies``, ``fold_thresholds``, ``fold_aucs`` (fold i's pairs under model i) and
    ``fold_auc_mean``. The pooled figures mix ten models' distance scales (a pair of fold i is
    compared with pairs of fold j scored by another model), so for the ten-model case the
    per-fold AUCs are the cleaner ranking measure; for one model the two agree closely.
    ``calibrated``: AUC, EER and TAR@FAR of the pooled distances divided by each fold model's
    threshold (see the module docstring).
    """
    d = np.asarray(dist_by_fold_model, np.float64)
    s = np.asarray(same, bool)
    f = np.asarray(folds, np.int64)
    pooled = pooled_distances(d, f)
    accs, thrs, aucs = [], [], []
    for i in range(d.shape[0]):
        test = f == i
        thr, _ = best_threshold(d[i, ~test], s[~test])
        accs.append(float(((d[i, test] <= thr) == s[test]).mean()))
        thrs.append(float(thr))
        far, tar, _ = roc_curve(d[i, test], s[test])
        aucs.append(auc(far, tar))
    out = evaluate_pairs(pooled, s)
    calibrated = evaluate_pairs(pooled / np.asarray(thrs)[f], s)
    a = np.asarray(accs)
    out.update(
        accuracy=float(a.mean()),
        accuracy_std=float(a.std()),
        accuracy_protocol=("unrestricted 10-fold: fold i scored by the model trained without fold i's people; "
                           "threshold chosen on the other nine folds' pairs scored by that same model"),
        fold_accuracies=accs,
        fold_thresholds=thrs,
        fold_aucs=aucs,
        fold_auc_mean=float(np.mean(aucs)),
        calibrated={k: calibrated[k] for k in ("auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3")},
    )
    out.pop("threshold", None)  # one best threshold over the pooled pairs of ten models means nothing
    return out
