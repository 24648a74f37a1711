"""The face a template keeps (faceapp.stored_face): a wide, model-independent crop, marked in its
JPEG, from which any shipped model's chip is made again when the model changes."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp import stored_face
from faceapp.detect.align import similarity_transform
from faceapp.embed.weights import available_specs, load_spec
from faceapp.imageio import decode_jpeg, encode_jpeg
from faceapp.types import BBox, Detection, Landmarks


def test_the_wide_frame_is_sface_at_one_and_a_half_times_with_a_margin():
    sface = np.asarray(load_spec("sface-v1").template, np.float64)
    np.testing.assert_allclose(stored_face.WIDE_TEMPLATE, sface * 1.5 + (28.0, 21.0), atol=1e-4)


@pytest.mark.parametrize("model_id", sorted(available_specs()))
def test_the_wide_crop_holds_every_shipped_models_chip(model_id):
    """Every pixel of each model's chip lies inside the wide crop: made from a wide crop, no chip
    has a filled band (as dlib's chip gave the fused canvas)."""
    spec = load_spec(model_id)
    m = np.vstack([similarity_transform(stored_face.WIDE_TEMPLATE, np.asarray(spec.template, np.float64)), [0, 0, 1]])
    back = np.linalg.inv(m)  # chip pixel -> wide-crop pixel
    s = spec.input_size - 1
    corners = back @ np.array([[0, s, 0, s], [0, 0, s, s], [1, 1, 1, 1]], np.float64)
    assert corners[:2].min() >= 0 and corners[:2].max() <= stored_face.WIDE_SIZE - 1, (model_id, corners[:2].round(1))


def _face(image_size=400):
    """A synthetic photo and a face in its middle at the wide template's scale."""
    y, x = np.mgrid[0:image_size, 0:image_size].astype(np.float64)
    img = np.stack([x * 255 / image_size, y * 255 / image_size, 128 + 100 * np.sin(x / 15) * np.cos(y / 20)], -1).astype(np.uint8)
    pts = (stored_face.WIDE_TEMPLATE + (image_size - stored_face.WIDE_SIZE) / 2).astype(np.float32)
    return img, Detection(BBox(100, 100, 300, 300), 0.99, Landmarks(pts))


def test_a_kept_face_is_marked_and_old_chips_are_not():
    img, det = _face()
    kept = stored_face.keep(img, det)
    assert stored_face.is_wide(kept)
    face = decode_jpeg(kept)
    assert face.shape == (stored_face.WIDE_SIZE, stored_face.WIDE_SIZE, 3)
    # the crop is the photo's middle (the face sits on the template): equal up to the JPEG
    off = (400 - stored_face.WIDE_SIZE) // 2
    assert np.abs(face.astype(int) - img[off:off + 224, off:off + 224].astype(int)).mean() < 3
    assert not stored_face.is_wide(encode_jpeg(face))  # the same picture without the mark: an old chip
    assert not stored_face.is_wide(encode_jpeg(np.zeros((150, 150, 3), np.uint8)))
    assert not stored_face.is_wide(b"")
    assert not stored_face.is_wide(b"not a jpeg at all")


def test_a_chip_made_from_the_kept_face_is_the_front_ends_chip(engine, lfw_image):
    """The chip made again from the wide crop is the one the model's own front end makes of the
    photo, up to the JPEG; the encodings agree far inside tau."""
    from faceapp.imageio import load_image

    img = load_image(lfw_image("Colin_Powell", 1))
    det = engine.relevant(engine.detect(img, still=True))[0]
    direct = engine.align(img, det).image
    again = stored_face.model_chip(decode_jpeg(stored_face.keep(img, det, engine.spec.border)), wide=True,
                                   old=None, engine=engine).image
    assert again.shape == direct.shape
    assert np.abs(again.astype(int) - direct.astype(int)).mean() < 4.0
    e = engine.embedder.embed([direct, again])
    assert float(((e[0] - e[1]) ** 2).sum()) < 0.1 * engine.threshold


def test_an_old_models_chip_is_realigned_onto_the_new_template():
    """A kept face without the mark is the old model's chip: its template points go exactly onto
    the new model's template."""
    old, new = load_spec("dlib-resnet-v1"), load_spec("sface-v1")
    chip = np.zeros((old.input_size, old.input_size, 3), np.uint8)
    for x, y in np.asarray(old.template).round().astype(int):  # a bright dot at each template point
        chip[y - 1:y + 2, x - 1:x + 2] = 255
    from faceapp.config import Settings
    from faceapp.pipeline import FaceEngine

    out = stored_face.model_chip(chip, wide=False, old=old, engine=FaceEngine(Settings(device="cpu"), spec=new)).image
    assert out.shape == (new.input_size, new.input_size, 3)
    for x, y in np.asarray(new.template).round().astype(int):
        assert out[y - 2:y + 3, x - 2:x + 3].max() > 100, (x, y)
