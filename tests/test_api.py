"""The public facade reads like a sentence and returns typed values."""

from __future__ import annotations

import numpy as np
import pytest

import faceapp
from faceapp.config import Settings
from faceapp.types import Decision, Detection

pytestmark = pytest.mark.datasets


@pytest.fixture
def app(db_url):
    a = faceapp.FaceApp(Settings(device="cpu", db_url=db_url))
    yield a
    a.close()


def test_enroll_verify_identify(app, lfw_image):
    app.enroll("colin", lfw_image("Colin_Powell", 1))
    r = app.verify(lfw_image("Colin_Powell", 2), "colin")
    assert r.decision is Decision.MATCH and 0.0 <= r.distance <= r.threshold
    assert app.identify(lfw_image("Colin_Powell", 3)).name == "colin"
    assert app.identify(lfw_image("Tony_Blair", 1)).decision is Decision.NOT_RECOGNIZED


def test_detect_and_embed(app, lfw_image):
    dets = app.detect_faces(lfw_image("John_Ashcroft", 2))
    assert len(dets) == 2 and all(isinstance(d, Detection) for d in dets)
    assert dets[0].bbox.area >= dets[1].bbox.area
    emb = app.embed_faces(lfw_image("John_Ashcroft", 2))
    assert emb.shape == (2, 128) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert app.embed_faces(np.full((100, 100, 3), 127, np.uint8)).shape == (0, 128)


def test_module_level_verbs_use_the_settings_database(monkeypatch, db_url, lfw_image):
    from faceapp.store import Store

    monkeypatch.setenv("FACEAPP_DB", db_url)
    monkeypatch.setenv("FACEAPP_DEVICE", "cpu")
    monkeypatch.setattr(faceapp.api, "_default", None)
    faceapp.enroll("tony", lfw_image("Tony_Blair", 2))
    assert faceapp.verify(lfw_image("Tony_Blair", 3), "tony").granted
    faceapp.api._default.close()
    with Store(db_url) as store:
        assert store.has_person("tony")
