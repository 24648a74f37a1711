"""The evaluation runner's pieces that need no network: fold dealing and the central face."""

from __future__ import annotations

import numpy as np

from faceapp.evaluation.runner import central_face, cross_validation_folds
from faceapp.types import BBox, Detection, Landmarks


def test_folds_are_stratified_and_deterministic():
    same = np.array([True] * 20 + [False] * 30)
    folds = cross_validation_folds(same, 10)
    for k in range(10):
        assert (same[folds == k]).sum() == 2 and (~same[folds == k]).sum() == 3
    assert np.array_equal(folds, cross_validation_folds(same, 10))
    assert cross_validation_folds(np.array([True] * 5 + [False] * 50), 10) is None


def test_central_face_is_the_one_nearest_the_centre():
    pts = Landmarks(np.zeros((5, 2)))
    big_corner = Detection(BBox(0, 0, 120, 120), 0.99, pts)
    centred = Detection(BBox(90, 90, 160, 160), 0.99, pts)
    assert central_face([big_corner, centred], (250, 250, 3)) is centred
    assert central_face([], (250, 250, 3)) is None
