"""LFW View 2 unrestricted protocol: fold exclusion of training people (hand-made people.txt)
and the per-fold-model threshold rule (faceapp.training.view2)."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.evaluation.protocols import read_lfw_people
from faceapp.match.calibration import kfold_accuracy
from faceapp.training.data import lfw_fold_identities, lfw_people_identities, view2_training_people
from faceapp.training.view2 import fold_training_mask, pooled_distances, unrestricted_kfold

# three sets; Ann has 3 photos, Bob 1, Cid 2, Dee 5, Eve 2, Fay 1
PEOPLE_TXT = "3\n2\nAnn\t3\nBob\t1\n2\nCid\t2\nDee\t5\n2\nEve\t2\nFay\t1\n"


@pytest.fixture
def lfw_dir(tmp_path):
    (tmp_path / "people.txt").write_text(PEOPLE_TXT)
    return tmp_path


def test_training_people_of_a_fold_exclude_exactly_that_set(lfw_dir):
    folds = read_lfw_people(lfw_dir, "10fold")
    assert view2_training_people(folds, 0) == {"Cid", "Dee", "Eve", "Fay"}
    assert view2_training_people(folds, 1) == {"Ann", "Bob", "Eve", "Fay"}
    assert view2_training_people(folds, 2) == {"Ann", "Bob", "Cid", "Dee"}
    for i in range(3):
        assert not view2_training_people(folds, i) & set(folds[i])
    with pytest.raises(ValueError):
        view2_training_people(folds, 3)


def test_a_name_in_two_sets_is_never_trained_on_in_its_test_fold():
    folds = [{"Ann": 2}, {"Ann": 2, "Cid": 2}]
    assert view2_training_people(folds, 0) == {"Cid"}


def test_fold_training_mask_selects_rows_of_other_sets_only(lfw_dir):
    folds = read_lfw_people(lfw_dir, "10fold")
    rows = ["Ann", "Ann", "Cid", "Dee", "Dee", "Eve", "Eve"]
    assert fold_training_mask(rows, folds, 1).tolist() == [True, True, False, False, False, True, True]
    assert fold_training_mask(rows, folds, 2).tolist() == [True, True, True, True, True, False, False]


def test_lfw_people_identities_cover_all_sets_and_agree_with_fold_identities(lfw_dir):
    ids = lfw_people_identities(lfw_dir, min_images=2, max_images=4)
    assert [i.name for i in ids] == ["Ann", "Cid", "Dee", "Eve"]  # Bob and Fay have one photo
    assert [len(i.images) for i in ids] == [3, 2, 4, 2]  # Dee capped at 4
    assert ids[0].images[0].name == "Ann_0001.jpg"
    for fold in range(3):
        folds = read_lfw_people(lfw_dir, "10fold")
        expected = [i.name for i in ids if i.name in view2_training_people(folds, fold)]
        assert [i.name for i in lfw_fold_identities(lfw_dir, fold, min_images=2, max_images=4)] == expected


def test_cache_resolves_lfw_people(lfw_dir, monkeypatch):
    from faceapp.training.cache import resolve_identities

    (lfw_dir / "lfw").mkdir()
    (lfw_dir / "lfw" / "people.txt").write_text(PEOPLE_TXT)
    monkeypatch.setenv("FACEAPP_DATASETS", str(lfw_dir))
    ids, root = resolve_identities("lfw-people", min_images=2)
    assert [i.name for i in ids] == ["Ann", "Cid", "Dee", "Eve"]
    assert root == lfw_dir / "lfw"


def test_one_model_for_all_folds_is_the_usual_kfold_accuracy():
    rng = np.random.default_rng(0)
    same = np.tile([True, False], 50)
    folds = np.repeat(np.arange(5), 20)
    d = np.where(same, rng.normal(0.3, 0.15, 100), rng.normal(0.7, 0.15, 100))
    r = unrestricted_kfold(np.tile(d, (5, 1)), same, folds)
    kf = kfold_accuracy(d, same, folds)
    assert r["accuracy"] == pytest.approx(kf.mean_accuracy)
    assert r["accuracy_std"] == pytest.approx(kf.std)
    assert r["fold_thresholds"] == pytest.approx(list(kf.fold_thresholds))
    assert r["pairs"] == 100


def test_each_fold_is_thresholded_and_scored_by_its_own_model():
    same = np.array([True, False, True, False, True, False, True, False])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    d = np.array([
        # model 0: fold 1 (its threshold pairs) separates at 0.5, and so does fold 0
        [0.2, 0.8, 0.3, 0.9, 0.1, 0.7, 0.4, 0.6],
        # model 1: fold 0 (its threshold pairs) separates at 0.55, fold 1 comes out reversed
        [0.2, 0.8, 0.3, 0.9, 0.9, 0.1, 0.8, 0.2],
    ])
    r = unrestricted_kfold(d, same, folds)
    assert r["fold_thresholds"] == pytest.approx([0.5, 0.55])
    # thresholding fold 0 with model 1's fold-1 scores would give 0.5, scoring fold 1 with model 0 1.0
    assert r["fold_accuracies"] == [1.0, 0.0]
    assert r["fold_aucs"] == pytest.approx([1.0, 0.0]) and r["fold_auc_mean"] == pytest.approx(0.5)
    np.testing.assert_allclose(pooled_distances(d, folds), [0.2, 0.8, 0.3, 0.9, 0.9, 0.1, 0.8, 0.2])
    assert r["auc"] < 0.75  # pooled: fold 1's reversed distances come from model 1
    with pytest.raises(ValueError):
        pooled_distances(d[:1], folds)


def test_calibrated_pooling_removes_the_fold_models_distance_scales():
    """Each fold model ranks its pairs perfectly, but on its own scale (model 1's distances are
    3x model 0's): pooled raw distances interleave the folds, calibrated ones do not."""
    same = np.array([True, False, True, False] * 2)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    base = np.array([0.2, 0.5, 0.3, 0.6, 0.2, 0.5, 0.3, 0.6])
    d = np.stack([base, 3 * base])  # model 0, model 1
    r = unrestricted_kfold(d, same, folds)
    assert r["fold_accuracies"] == [1.0, 1.0]
    assert r["fold_thresholds"][1] == pytest.approx(3 * r["fold_thresholds"][0])
    assert r["auc"] < 1.0  # model 1's same pairs (0.6, 0.9) are farther than model 0's different pairs
    assert r["calibrated"]["auc"] == pytest.approx(1.0) and r["calibrated"]["eer"] == pytest.approx(0.0)
    one = unrestricted_kfold(np.tile(base, (2, 1)), same, folds)  # one model: the scales agree already
    assert one["calibrated"]["auc"] == pytest.approx(one["auc"])
