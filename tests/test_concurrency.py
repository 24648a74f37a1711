"""Issue 15 item 3: two doors enrolling one face under two names at the same moment give one
enrollment and one refusal, on SQLite and on PostgreSQL (the check runs inside the write
transaction, under the enrollment lock)."""

from __future__ import annotations

import threading
import time

import numpy as np

from faceapp.errors import AlreadyEnrolled
from faceapp.store.repository import Store

FACE = np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32)


def _refuse_if_known(embedding: np.ndarray, pause_s: float):
    def guard(gallery) -> None:
        time.sleep(pause_s)  # widen the window between the check and the write
        if len(gallery.names):
            d = ((gallery.embeddings - embedding) ** 2).sum(axis=1)
            if d.min() <= 0.1:
                raise AlreadyEnrolled(f"this face already matches {gallery.names[int(d.argmin())]!r}",
                                      name=gallery.names[int(d.argmin())], distance=float(d.min()))
    return guard


def _at_two_doors(db_url: str, writes: dict) -> dict[str, str]:
    """Run each write (name -> function of a Store) at its own door, both released at once:
    name -> 'written' or 'refused' (AlreadyEnrolled)."""
    results: dict[str, str] = {}
    barrier = threading.Barrier(len(writes))

    def door(name: str) -> None:
        with Store(db_url) as store:
            barrier.wait()
            try:
                writes[name](store)
                results[name] = "written"
            except AlreadyEnrolled:
                results[name] = "refused"

    threads = [threading.Thread(target=door, args=(n,)) for n in writes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _enroll(name: str):
    return lambda store: store.add_person(name, embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"j",
                                          guard=_refuse_if_known(FACE, 0.3), event="enrolled")


def test_one_face_enrolled_at_two_doors_at_once_is_enrolled_once(db_url):
    Store(db_url).close()  # schema and keys first, as an installed building would have
    results = _at_two_doors(db_url, {"alice": _enroll("alice"), "alias": _enroll("alias")})
    assert sorted(results.values()) == ["refused", "written"]
    with Store(db_url) as store:
        assert len(store.list_people()) == 1
        enrolled = [e for e in store.events() if e.kind == "enroll"]
        assert [e.decided for e in enrolled] == [n for n, r in results.items() if r == "written"]
        assert store.verify_events().ok


def test_the_guard_sees_the_gallery_as_it_is_inside_the_transaction(db_url):
    with Store(db_url) as store:
        seen = []
        store.add_person("bob", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"j",
                         guard=lambda g: seen.append(list(g.names)))
        store.add_person("carol", embedding=np.array([0, 0, 1, 0], np.float32), model_id="m1", quality=1.0,
                         face_jpeg=b"j", guard=lambda g: seen.append(list(g.names)))
        assert seen == [[], ["bob"]]


def test_a_door_whose_gallery_copy_is_stale_still_refuses_a_face_enrolled_a_moment_ago(
        engine, analyzer, db_url, lfw_image):
    """The enrolling service checks the templates stored since its copy of the gallery inside
    the write transaction: another door's enrollment of the same face is seen there."""
    import pytest

    from faceapp.config import Settings
    from faceapp.services import FaceService

    settings = Settings(device="cpu", db_url=db_url)
    with FaceService(settings, engine=engine, analyzer=analyzer) as a, \
            FaceService(settings, engine=engine, analyzer=analyzer) as b:
        stale = a.gallery()  # a's copy of the gallery: nobody yet
        assert len(stale.names) == 0
        b.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
        a.gallery = lambda: stale  # a door between two pushes still holds that copy
        with pytest.raises(AlreadyEnrolled, match="Colin Powell"):
            a.enroll("C. Powell", lfw_image("Colin_Powell", 1))
        assert [p.name for p in a.store.list_people()] == ["Colin Powell"]


def test_a_photo_added_at_one_door_while_another_enrolls_that_face_is_added_once(db_url):
    """Adding a photo to an enrolled person (enroll --add) runs the same check under the same
    lock: the face added to 'ann' at one door and enrolled as 'alias' at another at once ends in
    one of the two, and the other is refused."""
    with Store(db_url) as store:
        store.add_person("ann", embedding=np.array([0, 0, 1, 0], np.float32), model_id="m1", quality=1.0,
                         face_jpeg=b"j")
    add = lambda store: store.add_template("ann", embedding=FACE, model_id="m1", quality=1.0,  # noqa: E731
                                           face_jpeg=b"j", guard=_refuse_if_known(FACE, 0.3), event="photo added")
    results = _at_two_doors(db_url, {"add": add, "enroll": _enroll("alias")})
    assert sorted(results.values()) == ["refused", "written"]
    with Store(db_url) as store:
        faces = [t for t in store.templates() if np.allclose(t.embedding, FACE)]
        assert len(faces) == 1
