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


def test_a_face_less_images_encoding_does_not_depend_on_what_the_cache_held_before(engine, lfw_image, tmp_path):
    """The face-less fallback (mean landmarks over the whole picture) is the mean of the images
    evaluated, not of every detection the shared cache ever stored (other datasets, other sizes):
    the same pairs give the same figures with a cold cache, a warm one or --no-cache."""
    import pytest

    pytest.importorskip("torch")
    from PIL import Image

    from faceapp.evaluation.runner import EvalCache, embed_images

    blank = tmp_path / "noise.png"  # no face, and textured: where the fallback's landmarks fall matters
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (250, 250, 3), dtype=np.uint8)).save(blank)
    images = [lfw_image("Colin_Powell", 1), lfw_image("Serena_Williams", 1), blank]
    cold = embed_images(engine, images, cache=EvalCache(engine, folder=tmp_path / "cold"))
    warm = EvalCache(engine, folder=tmp_path / "warm")
    pts = np.array([[300, 200], [340, 200], [320, 230], [305, 260], [335, 260]], float)  # a 640x480 frame's face
    for i in range(5):
        warm.detections[f"/elsewhere/frame{i}.jpg|1|1"] = [[280, 150, 360, 280], 0.99, (pts + i).tolist()]
    warm.save()
    again = embed_images(engine, images, cache=EvalCache(engine, folder=tmp_path / "warm"))
    np.testing.assert_allclose(again.embeddings, cold.embeddings, atol=1e-6)
    uncached = embed_images(engine, images, cache=EvalCache(engine, enabled=False))
    np.testing.assert_allclose(uncached.embeddings, cold.embeddings, atol=1e-6)


def test_the_caches_are_per_front_end_settings(engine, tmp_path):
    """Detections depend on the downscale of big images and on the smallest face looked for,
    encodings also on the brightness rule: other settings, other cache files."""
    import dataclasses

    from faceapp.evaluation.runner import EvalCache
    from faceapp.pipeline import FaceEngine

    base = EvalCache(engine, folder=tmp_path)
    for change in ({"max_image_side": 800}, {"min_face_size": 100}, {"min_brightness": 30.0}):
        other = FaceEngine(dataclasses.replace(engine.settings, **change), spec=engine.spec)
        c = EvalCache(other, folder=tmp_path)
        assert c.emb_file != base.emb_file, change
        if "min_brightness" not in change:
            assert c.det_file != base.det_file, change
    assert EvalCache(FaceEngine(engine.settings, spec=engine.spec), folder=tmp_path).det_file == base.det_file
