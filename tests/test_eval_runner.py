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


def test_aligned_chips_are_the_chips_embed_images_encodes(engine, lfw_image, tmp_path):
    """Tools that run other networks on evaluation chips (scripts/eval_view2_unrestricted.py) get
    exactly the chips faceapp eval encodes, a face-less image included (mean landmarks)."""
    import pytest

    pytest.importorskip("torch")
    from faceapp.evaluation.runner import EvalCache, aligned_chips, embed_images

    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.fromarray(np.full((250, 250, 3), 128, np.uint8)).save(blank)
    images = [lfw_image("Colin_Powell", 1), lfw_image("Serena_Williams", 1), blank]
    table = embed_images(engine, images, cache=EvalCache(engine, folder=tmp_path / "a"))
    chips, no_face = aligned_chips(engine, images, EvalCache(engine, folder=tmp_path / "b"))
    assert no_face == 1 and [p.name for p in table.fallback] == ["blank.png"]
    assert chips.shape == (3, engine.spec.input_size, engine.spec.input_size, 3)
    np.testing.assert_allclose(engine.embedder.embed(list(chips)), table.embeddings, atol=1e-6)
