"""The use cases on real faces (LFW): one-photo enrollment, 1:1 verification, 1:K identification."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from faceapp.errors import AlreadyEnrolled, DuplicatePerson, FaceRejected, ModelMismatch, UnknownPerson
from faceapp import stored_face
from faceapp.imageio import decode_jpeg, encode_jpeg, load_image
from faceapp.types import Decision, QualityIssue

pytestmark = pytest.mark.datasets

# Their first photos face the camera (Tony_Blair_0001, turned 30 degrees, is refused: see below).
PEOPLE = ["George_W_Bush", "Colin_Powell", "Ariel_Sharon", "Donald_Rumsfeld", "Hugo_Chavez", "Vladimir_Putin"]


def test_same_person_verifies_across_two_photos(service, lfw_image):
    service.enroll("George_W_Bush", lfw_image("George_W_Bush", 1))
    r = service.verify("George_W_Bush", lfw_image("George_W_Bush", 2))
    assert r.decision is Decision.MATCH and r.granted
    assert r.distance <= r.threshold == service.threshold


def test_different_person_does_not_verify(service, lfw_image):
    service.enroll("George_W_Bush", lfw_image("George_W_Bush", 1))
    r = service.verify("George_W_Bush", lfw_image("Colin_Powell", 1))
    assert r.decision is Decision.NO_MATCH and not r.granted
    assert r.distance > r.threshold


def test_identify_finds_the_right_person_among_several(service, lfw_image):
    for name in PEOPLE:
        service.enroll(name, lfw_image(name, 1))
    for name in PEOPLE:
        r = service.identify(lfw_image(name, 3))
        assert r.decision is Decision.MATCH, (name, r)
        assert r.name == name and r.candidates[0].name == name
        assert len(r.candidates) == 5 and r.candidates[0].distance <= r.candidates[1].distance


def test_a_stranger_is_not_recognized(service, lfw_image):
    for name in PEOPLE:
        service.enroll(name, lfw_image(name, 1))
    r = service.identify(lfw_image("Jean_Chretien", 1))
    assert r.decision is Decision.NOT_RECOGNIZED and r.name is None
    assert r.distance > r.threshold


def test_every_decision_is_logged(service, lfw_image):
    service.enroll("Tony_Blair", lfw_image("Tony_Blair", 2))
    service.verify("Tony_Blair", lfw_image("Tony_Blair", 3))
    service.identify(lfw_image("Colin_Powell", 1))
    kinds = [(e.kind, e.decision) for e in service.store.events()]
    assert kinds == [("identify", Decision.NOT_RECOGNIZED), ("verify", Decision.MATCH), ("enroll", None)]
    verify = service.store.events(decision=Decision.MATCH)[0]
    assert verify.claimed == "Tony_Blair" and verify.decided == "Tony_Blair"
    assert verify.threshold == pytest.approx(service.threshold)


def test_enrolling_an_already_enrolled_face_needs_force(service, lfw_image):
    service.enroll("George_W_Bush", lfw_image("George_W_Bush", 1))
    with pytest.raises(AlreadyEnrolled) as info:
        service.enroll("GWB again", lfw_image("George_W_Bush", 2))
    assert info.value.name == "George_W_Bush"
    assert not service.store.has_person("GWB again")
    res = service.enroll("GWB again", lfw_image("George_W_Bush", 2), force=True)
    assert res.similar_to == "George_W_Bush"


def test_an_existing_name_is_refused_unless_replacing(service, lfw_image):
    service.enroll("Colin_Powell", lfw_image("Colin_Powell", 1))
    with pytest.raises(DuplicatePerson):
        service.enroll("Colin_Powell", lfw_image("Colin_Powell", 2))
    service.enroll("Colin_Powell", lfw_image("Colin_Powell", 2), replace=True)
    assert service.store.get_person("Colin_Powell").template_count == 1


def test_several_faces_are_refused_unless_largest(service, lfw_image):
    photo = lfw_image("John_Ashcroft", 2)  # two faces of similar size
    with pytest.raises(FaceRejected) as info:
        service.enroll("John_Ashcroft", photo)
    assert info.value.decision is Decision.MULTIPLE_FACES
    # the largest face looks aside (a refused head pose): this test is about the count of faces
    service.settings = service.settings.replace(enroll_check_landmarks=False)
    service.enroll("John_Ashcroft", photo, largest=True)
    assert service.store.has_person("John_Ashcroft")


def test_no_face(service):
    blank = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(FaceRejected) as info:
        service.enroll("nobody", blank)
    assert info.value.decision is Decision.NO_FACE


def test_a_blurred_photo_is_low_quality(service, lfw_image):
    blurred = Image.open(lfw_image("Tony_Blair", 1)).filter(ImageFilter.GaussianBlur(2.5))
    with pytest.raises(FaceRejected) as info:
        service.enroll("Tony_Blair", blurred)
    assert info.value.decision is Decision.LOW_QUALITY
    assert QualityIssue.BLURRY in info.value.quality.issues


def test_a_dark_photo_is_brightened_for_verification_and_low_quality_without_that(service, lfw_image, monkeypatch):
    import dataclasses

    service.enroll("Tony_Blair", lfw_image("Tony_Blair", 2))
    dark = (load_image(lfw_image("Tony_Blair", 3)).astype(np.float32) * 0.2).astype(np.uint8)
    r = service.verify("Tony_Blair", dark)
    assert r.decision is Decision.MATCH and r.quality.ok  # brightened (setting brightness_normalize)
    monkeypatch.setattr(service.engine, "limits", dataclasses.replace(service.engine.limits, normalize=False))
    r = service.verify("Tony_Blair", dark)
    assert r.decision is Decision.LOW_QUALITY and QualityIssue.TOO_DARK in r.quality.issues


def test_removal_erases_the_face_data_and_keeps_the_log(service, lfw_image):
    service.enroll("Hugo_Chavez", lfw_image("Hugo_Chavez", 1))
    service.verify("Hugo_Chavez", lfw_image("Hugo_Chavez", 2))
    assert service.remove("Hugo_Chavez") == 1
    assert not service.store.has_person("Hugo_Chavez")
    assert service.store.templates() == []
    events = service.store.events()
    assert [e.kind for e in events] == ["remove", "verify", "enroll"]
    assert events[0].decided == "Hugo_Chavez" and "1 template(s)" in events[0].detail
    assert service.store.verify_events().ok
    with pytest.raises(UnknownPerson):
        service.verify("Hugo_Chavez", lfw_image("Hugo_Chavez", 2))


def test_templates_of_another_model_are_never_mixed(service, lfw_image):
    service.enroll("Vladimir_Putin", lfw_image("Vladimir_Putin", 1))
    emb = np.ones(128, np.float32) / np.sqrt(128)
    service.store.add_person("Somebody", embedding=emb, model_id="other-model-v9", quality=100.0, face_jpeg=b"")
    with pytest.raises(ModelMismatch, match="other-model-v9"):
        service.identify(lfw_image("Vladimir_Putin", 2))
    with pytest.raises(ModelMismatch, match="cannot be re-embedded"):
        service.reembed()


@pytest.fixture
def old_engine(engine, tmp_path, monkeypatch):
    """An engine of an older model, 'dlib-resnet-old': the same network on another alignment
    template (a resources folder of this test's own holding it and the current model)."""
    import json

    from faceapp import paths
    from faceapp.config import Settings
    from faceapp.pipeline import FaceEngine

    models = tmp_path / "resources" / "models"
    models.mkdir(parents=True)
    real = json.loads((paths.models_dir() / "dlib_resnet_v1.json").read_text())
    real["file"] = str(paths.models_dir() / real["file"])
    (models / "current.json").write_text(json.dumps(real))
    old = dict(real, model_id="dlib-resnet-old", template=(np.asarray(real["template"]) * 0.8 + 15).tolist())
    (models / "old.json").write_text(json.dumps(old))
    monkeypatch.setenv("FACEAPP_RESOURCES", str(tmp_path / "resources"))
    eng = FaceEngine(Settings(device="cpu", model="dlib-resnet-old"))
    eng._detector, eng._embedder = engine.detector, engine.embedder  # same network
    return eng


def test_a_wide_crop_of_an_uninstalled_model_is_still_reembedded(service, lfw_image):
    """A template keeping the wide crop needs nothing of the model that made it: not even its
    spec (an old chip of that model is refused, test above)."""
    img = load_image(lfw_image("Colin_Powell", 1))
    (obs,) = service.engine.observe(img)
    other = np.ones(128, np.float32) / np.sqrt(128)
    service.store.add_person("Colin_Powell", embedding=other, model_id="other-model-v9", quality=100.0,
                             face_jpeg=stored_face.keep(img, obs.aligned.detection))
    assert service.reembed() == 1
    (t,) = service.store.templates()
    assert t.model_id == service.engine.model_id and float(((t.embedding - obs.embedding) ** 2).sum()) < 0.1 * service.engine.threshold


def test_reembed_moves_templates_to_the_current_model(engine, old_engine, lfw_image, db_url):
    """Templates made by an older model (another alignment template) are re-encoded from their
    stored faces, after which matching works without re-enrolling anybody."""
    from faceapp.config import Settings
    from faceapp.services import FaceService

    # (the landmark model is not in this test's resources folder: no eyes / head-pose check)
    with FaceService(Settings(device="cpu", db_url=db_url, enroll_check_landmarks=False), engine=old_engine) as svc:
        svc.enroll("Colin_Powell", lfw_image("Colin_Powell", 1))
    with FaceService(Settings(device="cpu", db_url=db_url), engine=engine) as svc:
        kept = svc.store.templates()[0].face_jpeg
        assert stored_face.is_wide(kept)  # enrollment keeps the wide crop, not the old model's chip
        with pytest.raises(ModelMismatch):
            svc.identify(lfw_image("Colin_Powell", 2))
        assert svc.reembed() == 1
        assert svc.store.model_ids() == {engine.model_id: 1}
        assert svc.store.templates()[0].face_jpeg == kept  # the wide crop stays for the next change
        r = svc.identify(lfw_image("Colin_Powell", 2))
        assert r.decision is Decision.MATCH and r.name == "Colin_Powell"
        direct = engine.observe(load_image(lfw_image("Colin_Powell", 1)))[0].embedding
        # re-encoded from the wide crop = enrolled directly, up to the JPEG
        assert float(((svc.store.templates()[0].embedding - direct) ** 2).sum()) < 0.1 * engine.threshold


def test_reembed_reads_the_chip_an_older_enrollment_kept(engine, old_engine, lfw_image, db_url):
    """A template enrolled before the wide crop keeps the old model's chip (no mark): it is
    re-aligned onto the current template, and the kept face becomes the current model's chip."""
    from faceapp.config import Settings
    from faceapp.services import FaceService

    (obs,) = old_engine.observe(load_image(lfw_image("Colin_Powell", 1)))
    with FaceService(Settings(device="cpu", db_url=db_url), engine=engine) as svc:
        svc.store.add_person("Colin_Powell", embedding=obs.embedding, model_id="dlib-resnet-old", quality=100.0,
                             face_jpeg=encode_jpeg(obs.aligned.image))  # as enrollment kept it before
        assert svc.reembed() == 1
        kept = svc.store.templates()[0].face_jpeg
        assert not stored_face.is_wide(kept) and decode_jpeg(kept).shape[:2] == (engine.spec.input_size,) * 2
        r = svc.identify(lfw_image("Colin_Powell", 2))
        assert r.decision is Decision.MATCH and r.name == "Colin_Powell"


def test_a_turned_head_is_refused_for_enrollment_and_says_so(service, lfw_image):
    # Tony_Blair_0001 looks 30 degrees to the side (the landmark model's head pose; the limit is 25)
    photo = lfw_image("Tony_Blair", 1)
    with pytest.raises(FaceRejected) as info:
        service.enroll("Tony_Blair", photo)
    assert info.value.decision is Decision.LOW_QUALITY
    assert info.value.quality.issues == (QualityIssue.HEAD_TURNED,)
    assert not service.store.has_person("Tony_Blair") and service.store.events() == []
    probe = service.probe(photo, check_landmarks=True)
    assert probe.landmarks.points.shape == (68, 2) and probe.landmarks.quality.pose.yaw < -25
    assert service.probe(photo).observation.quality.ok  # verification does not judge the head pose


def test_the_enrollment_landmark_checks_follow_the_settings(service, lfw_image):
    import dataclasses

    service.settings = dataclasses.replace(service.settings, max_yaw_deg=40.0)
    service.analyzer.set_settings(service.settings)
    try:
        assert service.enroll("Tony_Blair", lfw_image("Tony_Blair", 1)).quality.ok
        service.settings = dataclasses.replace(service.settings, max_yaw_deg=25.0, enroll_check_landmarks=False)
        service.analyzer.set_settings(service.settings)
        assert service.enroll("Tony_Blair", lfw_image("Tony_Blair", 1), replace=True).quality.ok
    finally:
        service.analyzer.set_settings(dataclasses.replace(service.settings, max_yaw_deg=25.0))


def test_closed_eyes_are_refused_for_enrollment(engine, db_url, lfw_image):
    from faceapp.config import Settings
    from faceapp.landmarks.analyze import LandmarkAnalyzer
    from faceapp.landmarks.predict import LandmarkPredictor
    from faceapp.services import FaceService

    class ClosedEyes(LandmarkPredictor):
        """The real landmark CNN, with both eyes' lids moved onto the eye's corner line."""

        def predict_many(self, image, faces):
            pts = super().predict_many(image, faces)
            for eye in (range(36, 42), range(42, 48)):
                idx = list(eye)
                corners = pts[:, [idx[0], idx[3]]].mean(axis=1, keepdims=True)
                pts[:, idx, 1] = corners[..., 1] + (pts[:, idx, 1] - corners[..., 1]) * 0.2
            return pts

    settings = Settings(device="cpu", db_url=db_url)
    analyzer = LandmarkAnalyzer(settings, predictor=ClosedEyes(device="cpu"))
    with FaceService(settings, engine=engine, analyzer=analyzer) as svc:
        with pytest.raises(FaceRejected) as info:
            svc.enroll("George_W_Bush", lfw_image("George_W_Bush", 1))
        assert QualityIssue.EYES_CLOSED in info.value.quality.issues
        assert "eyes closed" in str(info.value)


def test_add_photo_gives_a_person_several_templates_and_refuses_someone_elses_face(service, lfw_image):
    service.enroll("George_W_Bush", lfw_image("George_W_Bush", 1))
    service.enroll("Colin_Powell", lfw_image("Colin_Powell", 1))
    with pytest.raises(UnknownPerson):
        service.enroll("Nobody_Here", lfw_image("George_W_Bush", 2), add=True)
    res = service.enroll("george_w_bush", lfw_image("George_W_Bush", 2), add=True)  # his own face is welcome
    assert res.person.name == "George_W_Bush" and res.person.template_count == 2 and not res.similar_to
    assert service.store.events()[0].detail == "photo added"
    with pytest.raises(AlreadyEnrolled) as info:  # Colin Powell's face is not added to George W. Bush
        service.enroll("George_W_Bush", lfw_image("Colin_Powell", 2), add=True)
    assert info.value.name == "Colin_Powell"
    assert service.store.get_person("George_W_Bush").template_count == 2
    templates = service.store.templates(person="George_W_Bush")
    probe = service.probe(lfw_image("George_W_Bush", 2)).observation.embedding
    nearest = min(float(((t.embedding - probe) ** 2).sum()) for t in templates)
    r = service.verify("George_W_Bush", lfw_image("George_W_Bush", 2))
    assert r.decision is Decision.MATCH and r.distance == pytest.approx(nearest, abs=1e-4)
    assert service.identify(lfw_image("George_W_Bush", 2)).name == "George_W_Bush"
    service.enroll("George_W_Bush", lfw_image("George_W_Bush", 3), replace=True)  # re-enroll starts over
    assert service.store.get_person("George_W_Bush").template_count == 1


def test_an_enrolled_gallery_exports_and_imports(service, lfw_image, tmp_path):
    """A real enrollment's kept face (the wide crop) passes the import's checks elsewhere."""
    from faceapp.storage import open_store

    service.enroll("Colin_Powell", lfw_image("Colin_Powell", 1))
    path = service.store.export_gallery(tmp_path / "gallery.zip").path
    with open_store(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert other.import_gallery(path, allow_unsigned=True).added == 1
        assert other.templates()[0].face_jpeg == service.store.templates()[0].face_jpeg


# -- re-embedding while other doors write (a fake engine: no dataset needed) -------------------


def _fake_reembed_service(store, model_id="B"):
    from types import SimpleNamespace

    from faceapp.services import FaceService

    out = np.zeros(128, np.float32)
    out[99] = 1
    eng = SimpleNamespace(model_id=model_id, align=lambda face, det: SimpleNamespace(image=face),
                          embedder=SimpleNamespace(embed=lambda ims: [out]))
    return FaceService(store=store, engine=eng, analyzer=object())


def _wide_face() -> bytes:
    return encode_jpeg(np.full((224, 224, 3), 120, np.uint8), comment=stored_face.MARK)


def _unit(i: int) -> np.ndarray:
    v = np.zeros(128, np.float32)
    v[i] = 1
    return v


def test_a_reembed_refuses_when_a_template_it_read_changes_meanwhile(db_url):
    """The re-embed holds no lock while it embeds: a person removed and another enrolled
    meanwhile (on SQLite before schema 0003, under the removed template's id) refuses the
    whole write instead of storing the removed face under the new name."""
    from faceapp.errors import StoreError
    from faceapp.store import Store

    with Store(db_url) as store, Store(db_url) as other:
        for i, name in enumerate(["alice", "mallory"]):
            store.add_person(name, embedding=_unit(i), model_id="A", quality=1, face_jpeg=_wide_face())

        def progress(i, n):
            if i == 1:  # the GUI removes mallory and enrolls bob while the re-embed runs
                other.remove_person("mallory")
                other.add_person("bob", embedding=_unit(5), model_id="A", quality=1, face_jpeg=_wide_face())

        with pytest.raises(StoreError, match="changed during the re-embed"):
            _fake_reembed_service(store).reembed(progress=progress)
        assert store.model_ids() == {"A": 2}
        [bob] = store.templates(person="bob")
        np.testing.assert_array_equal(bob.embedding, _unit(5))


def test_a_reembed_that_leaves_templates_of_another_model_says_so(db_url):
    """Another door still on the old model enrolls during the re-embed: the re-embed does not
    report success over a mixed gallery (every door on the new model would refuse everyone)."""
    from faceapp.store import Store

    with Store(db_url) as store, Store(db_url) as other:
        for i, name in enumerate(["alice", "bob"]):
            store.add_person(name, embedding=_unit(i), model_id="A", quality=1, face_jpeg=_wide_face())

        def progress(i, n):
            if i == 1:
                other.add_person("carol", embedding=_unit(7), model_id="A", quality=1, face_jpeg=_wide_face())

        with pytest.raises(ModelMismatch, match=r"'carol'.*db reembed") as info:
            _fake_reembed_service(store).reembed(progress=progress)
        assert "\n" not in str(info.value)
        assert store.model_ids() == {"A": 1, "B": 2}
        assert _fake_reembed_service(store).reembed() == 1  # run again: done
        assert store.model_ids() == {"B": 3}
