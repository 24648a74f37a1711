"""Evaluation protocols: which pairs of images to compare, and how they are labelled.

The metrics themselves (ROC, EER, TAR@FAR, k-fold accuracy) live in
:mod:`faceapp.match.calibration`.
"""

from __future__ import annotations

from faceapp.evaluation.protocols import (
    DATASETS_ENV,
    Pair,
    datasets_dir,
    read_lfw_pairs,
    read_lfw_people,
    read_pairs_csv,
)

__all__ = [
    "DATASETS_ENV",
    "Pair",
    "datasets_dir",
    "read_lfw_pairs",
    "read_lfw_people",
    "read_pairs_csv",
]
