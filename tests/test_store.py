"""The enrollment store: engine settings, people, templates, gallery, events, generation,
export/import, and writes that fail leaving the data as it was.

Every test that takes ``store`` or ``db_url`` runs on SQLite and on PostgreSQL (see the
``db_url`` fixture); the SQLite-only ones (WAL, pragmas, locking, in-memory, file errors)
take the ``db`` file path and say so."""

from __future__ import annotations

import socket
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from dbdump import dump

import faceapp.store.repository as repository
from faceapp.errors import DuplicatePerson, ModelMismatch, StoreError, UnknownPerson
from faceapp.store import Store, make_engine
from faceapp.store.db import mask_url
from faceapp.store.migrate import head_revision
from faceapp.types import Decision, Event, Person, Template

JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def vec(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def enroll(store: Store, name: str, *values: float, model: str = "m1", jpeg: bytes = JPEG) -> Person:
    return store.add_person(name, embedding=vec(*(values or (1, 0, 0, 0))), model_id=model, quality=0.9, face_jpeg=jpeg)


@pytest.fixture
def db(tmp_path) -> Path:
    """A SQLite file path, for the SQLite-only tests."""
    return tmp_path / "data" / "faceapp.db"


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        yield s


# -- engine --------------------------------------------------------------------------------


def test_sqlite_file_engine_uses_wal_foreign_keys_and_busy_timeout(db):
    """SQLite only."""
    engine = make_engine(f"sqlite:///{db}", busy_timeout_ms=1234)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    engine.dispose()
    assert db.parent.is_dir()  # the folder was created


def test_foreign_keys_cascade_in_the_database(store):
    enroll(store, "alice")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM people")
        assert conn.exec_driver_sql("SELECT count(*) FROM templates").scalar() == 0
    # (a row deleted around the store is tampering with the gallery record: refused, not served)
    with pytest.raises(StoreError, match="gallery record"):
        store.templates()


def test_sqlite_memory_database_is_shared_by_all_sessions():
    """SQLite only."""
    with Store("sqlite:///:memory:") as store:
        enroll(store, "alice")
        assert store.get_person("alice").template_count == 1
        assert store.info()["people"] == 1


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x/y", "sqlite:///{tmp}"])
def test_bad_url_is_a_one_line_store_error(url, tmp_path):
    with pytest.raises(StoreError) as info:
        make_engine(url.format(tmp=tmp_path))  # tmp_path itself is a folder, not a file
    assert "\n" not in str(info.value)


def test_sqlite_file_that_is_not_a_database_is_a_store_error(tmp_path):
    """SQLite only."""
    bad = tmp_path / "photo.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store(f"sqlite:///{bad}")


def test_password_is_masked():
    assert "secret" not in mask_url("postgresql://me:secret@host/faceapp")


def test_postgresql_server_that_cannot_be_reached_is_a_one_line_store_error():
    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as info:
        make_engine(f"postgresql+psycopg://me:secret@127.0.0.1:{port}/faceapp")
    message = str(info.value)
    assert "\n" not in message and "secret" not in message
    assert f"127.0.0.1:{port}" in message


@pytest.mark.postgresql
def test_postgresql_server_crash_is_a_store_error_and_keeps_what_was_committed(pg_cluster, pg_url):
    with Store(pg_url) as store:
        enroll(store, "alice")
        pg_cluster.stop("immediate")  # killed: no clean shutdown
        try:
            with pytest.raises(StoreError) as info:
                store.list_people()
            assert "\n" not in str(info.value)
        finally:
            pg_cluster.start()
        assert [p.name for p in store.list_people()] == ["alice"]  # the pool reconnects


def test_sqlite_locked_database_is_a_store_error_and_writes_nothing(db):
    """SQLite only (BEGIN IMMEDIATE and the busy timeout)."""
    engine = make_engine(f"sqlite:///{db}", busy_timeout_ms=50)
    store = Store(engine=engine)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            enroll(store, "alice")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not store.has_person("alice")
    store.close()
    engine.dispose()


def test_closed_store_refuses_calls(store):
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_people()


# -- people --------------------------------------------------------------------------------


def test_add_person_strips_the_name_and_returns_a_person(store):
    person = enroll(store, "  Alice  ")
    assert isinstance(person, Person)
    assert person.name == "Alice"
    assert person.template_count == 1
    assert person.created_at.tzinfo is UTC
    assert store.get_person("Alice") == person
    assert store.has_person(" Alice ")


@pytest.mark.parametrize("name", ["", "   ", "a\nb"])
def test_bad_name_is_refused(store, name):
    with pytest.raises(StoreError):
        enroll(store, name)
    assert store.list_people() == []


def test_duplicate_name_is_refused(store):
    enroll(store, "alice")
    with pytest.raises(DuplicatePerson, match="alice"):
        enroll(store, "alice")
    assert store.get_person("alice").template_count == 1


def test_unknown_person_names_them_and_hints_at_the_people_command(store):
    enroll(store, "Alice")
    with pytest.raises(UnknownPerson) as info:
        store.get_person("Alicia")
    assert "'Alicia'" in str(info.value)
    assert "faceapp people" in str(info.value)
    assert store.get_person("alice").name == "Alice"  # names are one person whatever their case


def test_list_people_sorts_ignoring_case_and_searches(store):
    for name in ("carol", "Bob", "alice", "Alicia"):
        enroll(store, name)
    store.add_template("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=0.5, face_jpeg=JPEG)
    assert [p.name for p in store.list_people()] == ["alice", "Alicia", "Bob", "carol"]
    found = store.list_people("ALI")
    assert [(p.name, p.template_count) for p in found] == [("alice", 2), ("Alicia", 1)]
    assert store.list_people("zed") == []


def test_rename_person_keeps_templates_and_events(store):
    enroll(store, "alice")
    store.log_event("verify", decision=Decision.MATCH, claimed="alice", distance=0.1, threshold=0.6)
    renamed = store.rename_person("alice", " Alison ")
    assert renamed.name == "Alison"
    assert renamed.template_count == 1
    assert not store.has_person("alice")
    # the log is never rewritten: the old event keeps its name and stays linked to the person
    assert [(e.kind, e.claimed) for e in store.events(person="Alison")] == [("rename", "alice"), ("verify", "alice")]


def test_rename_to_a_taken_name_or_from_an_unknown_name_is_refused(store):
    enroll(store, "alice")
    enroll(store, "bob")
    with pytest.raises(DuplicatePerson):
        store.rename_person("alice", "bob")
    with pytest.raises(UnknownPerson):
        store.rename_person("zed", "zack")
    assert [p.name for p in store.list_people()] == ["alice", "bob"]


def test_remove_person_removes_templates_but_keeps_events(store):
    enroll(store, "alice")
    store.add_template("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=0.5, face_jpeg=JPEG)
    enroll(store, "bob", 0, 0, 1, 0)
    store.log_event("identify", decision=Decision.MATCH, decided="alice")  # linked by id
    store.log_event("verify", decision=Decision.NO_MATCH, claimed="alice")  # claimed
    store.log_event("door", decision=Decision.NO_MATCH, claimed="bob", decided="alice")
    store.log_event("verify", decision=Decision.MATCH, claimed="bob")
    assert store.remove_person("alice") == 2
    assert not store.has_person("alice")
    assert {t.person_name for t in store.templates()} == {"bob"}
    assert [(e.kind, e.claimed, e.decided) for e in store.events()] == [
        ("remove", None, "alice"), ("verify", "bob", None), ("door", "bob", "alice"),
        ("verify", "alice", None), ("identify", None, "alice"),
    ]
    assert "2 template(s)" in store.events()[0].detail


def test_remove_unknown_person_is_refused(store):
    with pytest.raises(UnknownPerson):
        store.remove_person("alice")


def test_remove_template_removes_one_photo_but_never_the_last(store):
    enroll(store, "alice")
    second = store.add_template("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=0.5, face_jpeg=JPEG,
                                event="photo added")
    assert store.events()[0].detail == "photo added"
    before = store.generation()
    removed = store.remove_template(second.id)
    assert removed.id == second.id and removed.person_name == "alice"
    assert store.generation() != before
    left = store.templates(person="alice")
    assert [t.id for t in left] == [left[0].id] and left[0].id != second.id
    assert store.get_person("alice").template_count == 1
    event = store.events()[0]
    assert (event.kind, event.decided) == ("remove", "alice") and "1 left" in event.detail
    with pytest.raises(StoreError, match="only photo"):
        store.remove_template(left[0].id)
    with pytest.raises(StoreError, match="no template"):
        store.remove_template(second.id)
    assert store.get_person("alice").template_count == 1
    assert store.verify_events().ok


# -- templates -----------------------------------------------------------------------------


def test_add_template_to_unknown_person_is_refused(store):
    with pytest.raises(UnknownPerson):
        store.add_template("alice", embedding=vec(1, 0), model_id="m1", quality=1.0, face_jpeg=JPEG)
    assert store.templates() == []


def test_templates_round_trip_exactly(store):
    emb = np.array([0.1, -0.2, 1e-8, 3.0], dtype=np.float64)
    emb /= np.linalg.norm(emb)  # stored as float32
    enroll(store, "alice", *emb, jpeg=b"face-bytes")
    [t] = store.templates(person="alice")
    assert isinstance(t, Template)
    assert t.person_name == "alice" and t.model_id == "m1" and t.quality == pytest.approx(0.9)
    assert t.embedding.dtype == np.float32
    np.testing.assert_array_equal(t.embedding, emb.astype(np.float32))
    assert t.face_jpeg == b"face-bytes"
    assert store.face_jpeg(t.id) == b"face-bytes"


@pytest.mark.parametrize("bad", [np.zeros((1, 4)), np.zeros(0), vec(1, np.nan), vec(3, 4), vec(0, 0)])
def test_malformed_embedding_is_refused(store, bad):
    with pytest.raises(ValueError):
        store.add_person("alice", embedding=bad, model_id="m1", quality=1.0, face_jpeg=JPEG)
    assert store.list_people() == []


def test_replace_templates_leaves_only_the_new_one(store):
    enroll(store, "alice", 1, 0, 0, 0)
    store.add_template("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=0.5, face_jpeg=JPEG)
    new = store.replace_templates("alice", embedding=vec(0, 0, 1, 0), model_id="m1", quality=0.7, face_jpeg=b"new")
    [t] = store.templates(person="alice")
    assert t.id == new.id
    np.testing.assert_array_equal(t.embedding, vec(0, 0, 1, 0))
    assert store.get_person("alice").template_count == 1


def test_model_ids_counts_templates_per_model(store):
    enroll(store, "alice", model="m1")
    enroll(store, "bob", model="m1")
    enroll(store, "carol", model="m2")
    assert store.model_ids() == {"m1": 2, "m2": 1}
    assert [t.person_name for t in store.templates(model_id="m2")] == ["carol"]


def test_one_model_cannot_have_two_embedding_sizes(store, db_url):
    enroll(store, "alice", 1, 0, 0, 0)
    before = dump(db_url)
    with pytest.raises(ModelMismatch, match="sizes"):
        store.add_person("bob", embedding=vec(1, 0), model_id="m1", quality=1.0, face_jpeg=JPEG)
    assert dump(db_url) == before


def test_update_embeddings_re_embeds_in_one_transaction(store, db_url):
    enroll(store, "alice", 1, 0, 0, 0, model="old")
    enroll(store, "bob", 0, 1, 0, 0, model="old")
    [a, b] = store.templates()
    before = dump(db_url)
    with pytest.raises(StoreError, match="no template with id 999"):
        store.update_embeddings([(a.id, vec(0.6, 0.8)), (999, vec(0, 1))], "new")
    assert dump(db_url) == before
    assert store.update_embeddings([(a.id, vec(0.6, 0.8)), (b.id, vec(0, 1))], "new") == 2
    assert store.model_ids() == {"new": 2}
    t = store.update_embedding(a.id, vec(0.8, 0.6), "new")
    np.testing.assert_array_equal(t.embedding, vec(0.8, 0.6))
    assert t.face_jpeg == JPEG  # the crop it was re-embedded from is kept


def test_update_embeddings_refuses_templates_that_changed_since_they_were_read(store, db_url):
    """A re-embed reads the templates, embeds them for minutes, then writes: a template removed,
    re-enrolled or re-embedded meanwhile (or an id now given to someone else) refuses the batch."""
    enroll(store, "alice", 1, 0, 0, 0, model="old")
    enroll(store, "mallory", 0, 1, 0, 0, model="old")
    todo = store.templates()
    store.remove_person("mallory")
    enroll(store, "bob", 0, 0, 1, 0, model="old")  # on SQLite before 0003: mallory's template id
    before = dump(db_url)
    with pytest.raises(StoreError, match="changed during the re-embed"):
        store.update_embeddings([(t, vec(0.6, 0.8)) for t in todo], "new")
    assert dump(db_url) == before
    [bob] = store.templates(person="bob")
    np.testing.assert_array_equal(bob.embedding, vec(0, 0, 1, 0))


def test_update_embeddings_refuses_a_template_re_embedded_by_someone_else(store, db_url):
    enroll(store, "alice", 1, 0, 0, 0, model="old")
    [a] = store.templates()
    store.update_embeddings([(a, vec(0, 1, 0, 0))], "other")  # another admin's re-embed
    before = dump(db_url)
    with pytest.raises(StoreError, match="changed during the re-embed"):
        store.update_embeddings([(a, vec(0.6, 0.8))], "new")
    assert dump(db_url) == before


def test_ids_of_removed_people_and_templates_are_never_reused(store):
    enroll(store, "alice")
    mallory = enroll(store, "mallory", 0, 1, 0, 0)
    [_, mt] = store.templates()
    store.remove_person("mallory")
    bob = enroll(store, "bob", 0, 0, 1, 0)
    [_, bt] = store.templates()
    assert bob.id > mallory.id and bt.id > mt.id
    assert [e.kind for e in store.events(person="bob")] == []  # mallory's removal is not bob's


def test_face_jpeg_of_unknown_template_is_refused(store):
    with pytest.raises(StoreError, match="no template"):
        store.face_jpeg(42)


# -- gallery -------------------------------------------------------------------------------


def test_gallery_has_one_row_per_template(store):
    alice = enroll(store, "alice", 1, 0, 0)
    store.add_template("alice", embedding=vec(0, 1, 0), model_id="m1", quality=0.5, face_jpeg=JPEG)
    bob = enroll(store, "bob", 0, 0, 1)
    names, ids, matrix = store.gallery("m1")
    assert names == ["alice", "alice", "bob"]
    assert ids.dtype == np.int64 and ids.tolist() == [alice.id, alice.id, bob.id]
    assert matrix.dtype == np.float32 and matrix.shape == (3, 3)
    np.testing.assert_array_equal(matrix, np.eye(3, dtype=np.float32))
    matrix[0, 0] = 5.0  # the caller owns a writable copy


def test_empty_gallery_has_empty_arrays(store):
    names, ids, matrix = store.gallery("m1")
    assert names == [] and ids.shape == (0,) and matrix.shape == (0, 0)
    assert matrix.dtype == np.float32 and ids.dtype == np.int64


def test_gallery_refuses_to_mix_models(store):
    enroll(store, "alice", model="m1")
    enroll(store, "bob", model="old")
    enroll(store, "carol", model="old")
    with pytest.raises(ModelMismatch) as info:
        store.gallery("m1")
    message = str(info.value)
    assert "2 stored templates" in message and "'old'" in message and "faceapp db reembed" in message
    names, _, matrix = store.gallery("m1", strict=False)
    assert names == ["alice"] and matrix.shape == (1, 4)


# -- events --------------------------------------------------------------------------------


def test_log_event_returns_the_event(store):
    e = store.log_event("verify", decision=Decision.NO_MATCH, claimed="alice", distance=0.8, threshold=0.6, detail="x")
    assert isinstance(e, Event)
    assert (e.kind, e.decision, e.claimed, e.decided, e.distance, e.threshold, e.detail) == (
        "verify", Decision.NO_MATCH, "alice", None, 0.8, 0.6, "x"
    )
    assert e.time.tzinfo is UTC
    assert store.events() == [e]


def test_events_filter_by_person_decision_and_time_newest_first(store):
    enroll(store, "alice")
    log = store.log_event
    log("verify", decision=Decision.MATCH, claimed="alice", time=T0)
    log("identify", decision=Decision.NOT_RECOGNIZED, time=T0 + timedelta(hours=1))
    log("verify", decision=Decision.NO_MATCH, claimed="bob", time=T0 + timedelta(hours=2))
    log("identify", decision=Decision.MATCH, decided="alice", time=T0 + timedelta(hours=3))
    hours = lambda events: [int((e.time - T0).total_seconds() // 3600) for e in events]  # noqa: E731
    assert hours(store.events()) == [3, 2, 1, 0]
    assert hours(store.events(person="alice")) == [3, 0]
    assert hours(store.events(person="bob")) == [2]  # never enrolled, still searchable
    assert hours(store.events(decision=Decision.MATCH)) == [3, 0]
    assert hours(store.events(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))) == [2, 1]
    assert hours(store.events(since=datetime(2024, 5, 1, 14))) == [3, 2]  # naive means UTC
    assert hours(store.events(limit=2)) == [3, 2]


def test_event_times_in_other_zones_are_stored_as_utc(store):
    cest = datetime(2024, 5, 1, 14, 0, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=2))
    )
    store.log_event("door", time=cest)
    [e] = store.events()
    assert e.time == T0 + timedelta(hours=2) and e.time.tzinfo is UTC


# -- generation ----------------------------------------------------------------------------


def test_generation_changes_with_every_gallery_change(store):
    seen = [store.generation()]

    def changed() -> bool:
        seen.append(store.generation())
        return seen[-1] != seen[-2]

    enroll(store, "alice")
    assert changed()
    t = store.add_template("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=0.5, face_jpeg=JPEG)
    assert changed()
    store.update_embedding(t.id, vec(0, 0, 1, 0), "m1")
    assert changed()
    store.rename_person("alice", "alison")
    assert changed()
    store.replace_templates("alison", embedding=vec(1, 0, 0, 0), model_id="m1", quality=0.5, face_jpeg=JPEG)
    assert changed()
    store.remove_person("alison")
    assert changed()
    store.log_event("verify", claimed="x")
    store.list_people()
    assert not changed()  # events and reads leave the gallery as it was


def test_generation_is_seen_by_another_process(db_url):
    with Store(db_url) as first, Store(db_url) as second:
        before = first.generation()
        enroll(second, "alice")
        assert first.generation() != before


# -- info ----------------------------------------------------------------------------------


def test_info_counts_everything(store, db_url):
    enroll(store, "alice", model="m1")
    enroll(store, "bob", model="m2")
    store.log_event("verify", claimed="alice")
    info = store.info()
    assert info == {
        "url": db_url,  # no password in the test URLs, so nothing is masked
        "revision": head_revision(),
        "head": head_revision(),
        "people": 2,
        "templates": 2,
        "events": 1,
        "models": {"m1": 1, "m2": 1},
    }


# -- export / import -----------------------------------------------------------------------


def _jpeg(shade: int, size: int = 8) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (shade, 90, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def _importing(url: str, dim: int) -> Store:
    """A store that knows models m1 and m2 (``dim`` values, 8x8 faces): imports need that."""
    facts = repository.ModelFacts(embedding_dim=dim, input_size=8)
    return Store(url, models={"m1": facts, "m2": facts})


def test_export_import_round_trip(db_url, tmp_path):
    store = _importing(db_url, 128)
    emb = np.random.default_rng(0).standard_normal(128).astype(np.float32)
    emb /= np.linalg.norm(emb)
    enroll(store, "alice", *emb, jpeg=_jpeg(10))
    store.add_template("alice", embedding=-emb, model_id="m1", quality=0.25, face_jpeg=_jpeg(20))
    enroll(store, "bob", *emb[::-1], model="m2", jpeg=_jpeg(30))
    store.add_person("nobody-yet", embedding=emb, model_id="m1", quality=1.0, face_jpeg=_jpeg(40))
    store.remove_person("nobody-yet")
    result = store.export_gallery(tmp_path / "out" / "gallery.zip")
    assert (result.people, result.templates) == (2, 3)
    assert zipfile.is_zipfile(result.path)

    with _importing("sqlite://", 128) as other:
        imported = other.import_gallery(result.path)
        assert (imported.added, imported.replaced, imported.skipped, imported.templates) == (2, 0, 0, 3)
        key = lambda t: (t.person_name, t.model_id, t.quality, t.created_at, t.face_jpeg, t.embedding.tobytes())  # noqa: E731
        assert sorted(map(key, other.templates())) == sorted(map(key, store.templates()))
        assert [(p.name, p.created_at) for p in other.list_people()] == [
            (p.name, p.created_at) for p in store.list_people()
        ]
    store.close()


def test_import_conflicts_skip_replace_or_error(tmp_path, db_url):
    store = _importing(db_url, 4)
    enroll(store, "alice", 1, 0, 0, 0, jpeg=_jpeg(1))
    enroll(store, "bob", 0, 1, 0, 0, jpeg=_jpeg(2))
    path = store.export_gallery(tmp_path / "g.zip").path
    store.replace_templates("alice", embedding=vec(0, 0, 0, 1), model_id="m1", quality=0.1, face_jpeg=b"")
    store.remove_person("bob")
    store.add_person("carol", embedding=vec(0, 0, 1, 0), model_id="m1", quality=0.1, face_jpeg=b"")

    before = dump(db_url)
    with pytest.raises(DuplicatePerson, match="nothing was imported"):
        store.import_gallery(path, on_conflict="error")
    assert dump(db_url) == before  # bob was not added either

    skipped = store.import_gallery(path, on_conflict="skip")
    assert (skipped.added, skipped.skipped, skipped.templates) == (1, 1, 1)
    np.testing.assert_array_equal(store.templates(person="alice")[0].embedding, vec(0, 0, 0, 1))

    replaced = store.import_gallery(path, on_conflict="replace")
    assert (replaced.added, replaced.replaced, replaced.templates) == (0, 2, 2)
    np.testing.assert_array_equal(store.templates(person="alice")[0].embedding, vec(1, 0, 0, 0))
    assert [p.name for p in store.list_people()] == ["alice", "bob", "carol"]
    store.close()


def test_import_with_unknown_conflict_rule_is_refused(store, tmp_path):
    path = store.export_gallery(tmp_path / "g.zip").path
    with pytest.raises(ValueError, match="skip, replace, error"):
        store.import_gallery(path, on_conflict="merge")  # type: ignore[arg-type]


@pytest.mark.parametrize("content", [None, b"not a zip", "zip-without-manifest"])
def test_import_of_a_bad_file_is_a_store_error(store, tmp_path, content):
    path = tmp_path / "g.zip"
    if content == "zip-without-manifest":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("other.txt", "x")
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        store.import_gallery(path)
    assert "\n" not in str(info.value)


# -- failed writes -------------------------------------------------------------------------


def _fail(*_args, **_kwargs):
    raise RuntimeError("disk gremlin")


@pytest.mark.parametrize(
    "write",
    [
        lambda s: enroll(s, "dave"),
        lambda s: s.add_template("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=1.0, face_jpeg=JPEG),
        lambda s: s.replace_templates("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=1.0, face_jpeg=JPEG),
        lambda s: s.rename_person("alice", "alison"),
        lambda s: s.remove_person("alice"),
        lambda s: s.update_embedding(s.templates()[0].id, vec(0.5, 0.5, 0.5, 0.5), "m1"),
    ],
    ids=["add_person", "add_template", "replace_templates", "rename", "remove", "update_embedding"],
)
def test_write_that_fails_half_way_changes_nothing(store, db_url, monkeypatch, write):
    enroll(store, "alice")
    store.log_event("verify", decision=Decision.MATCH, claimed="alice")
    before = dump(db_url)
    # Fails at the very end of the transaction, after every row has been written.
    monkeypatch.setattr(repository, "_bump_generation", _fail)
    with pytest.raises(RuntimeError, match="disk gremlin"):
        write(store)
    assert dump(db_url) == before


# -- a site key rotated by another process -------------------------------------------------


def _rotate(db_url: str, key_file: Path) -> str:
    """What `faceapp db rotate-key` does, in "another process" (a store of its own)."""
    from faceapp.store import crypto

    with Store(db_url, key_file=key_file) as admin:
        new = crypto.SiteKey.generate()
        backup = crypto.install_key(key_file, new)
        admin.rotate_site_key(new)
        crypto.commit_rotation(backup)
    return new.key_id


def test_a_store_open_during_a_key_rotation_takes_the_new_key_from_its_key_file(db_url, tmp_path):
    """A GUI, kiosk or door running while `faceapp db rotate-key` runs elsewhere: its gallery
    keeps everyone, and what it enrolls afterwards is wrapped with the key the database records
    (the old key file is deleted by the rotation)."""
    key_file = tmp_path / "keys" / "faceapp.key"
    running = Store(db_url, key_file=key_file)
    try:
        enroll(running, "alice", 1, 0, 0, 0)
        new_id = _rotate(db_url, key_file)
        assert running.gallery("m1").names == ["alice"]
        assert running.site_key_id == new_id
        enroll(running, "bob", 0, 1, 0, 0)
        running.add_template("alice", embedding=vec(0, 0, 1, 0), model_id="m1", quality=1.0, face_jpeg=JPEG)
    finally:
        running.close()
    with Store(db_url, key_file=key_file) as restarted:
        assert sorted(restarted.gallery("m1").names) == ["alice", "alice", "bob"]
        assert len(restarted.templates()) == 3
        assert restarted.verify_events().ok


def test_a_store_whose_key_file_misses_the_rotated_key_refuses_to_write_or_serve(db_url, tmp_path):
    """The running process's key file does not hold the key the database now records (the
    admin rotated with another copy of the key file): every write that wraps a data key is
    refused, nothing is written, and the gallery is an error, never an empty gallery."""
    import shutil

    key_file = tmp_path / "door" / "faceapp.key"
    running = Store(db_url, key_file=key_file)
    try:
        enroll(running, "alice", 1, 0, 0, 0)
        admin_key = tmp_path / "admin" / "faceapp.key"
        admin_key.parent.mkdir(mode=0o700)
        shutil.copy(key_file, admin_key)
        _rotate(db_url, admin_key)
        before = dump(db_url)
        for write in (
            lambda: enroll(running, "bob", 0, 1, 0, 0),
            lambda: running.add_template("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=1.0,
                                         face_jpeg=JPEG),
            lambda: running.replace_templates("alice", embedding=vec(0, 1, 0, 0), model_id="m1", quality=1.0,
                                              face_jpeg=JPEG),
            lambda: running.update_embeddings([(t, vec(0, 0, 1, 0)) for t in running.templates()], "m1"),
        ):
            with pytest.raises(StoreError, match="site key was rotated"):
                write()
        assert dump(db_url) == before
        with pytest.raises(StoreError, match="site key was rotated"):
            running.gallery("m1")
        with pytest.raises(StoreError, match="site key was rotated"):
            running.templates()
    finally:
        running.close()
    with Store(db_url, key_file=admin_key) as admin:
        assert admin.gallery("m1").names == ["alice"]


# -- reads that are one snapshot -----------------------------------------------------------


def _commit_between_statements(store: Store, db_url: str, after: str, write) -> list[bool]:
    """Commit ``write(other_store)`` from another connection right after ``store`` has run
    its first statement containing ``after``: what a second process does in the middle of a
    multi-statement read (PostgreSQL's READ COMMITTED would show it to the statements after)."""
    from sqlalchemy import event

    done: list[bool] = []

    def _after(_conn, _cursor, statement, *_args) -> None:
        if not done and after in statement:
            done.append(True)
            with Store(db_url) as other:
                write(other)

    event.listen(store.engine, "after_cursor_execute", _after)
    return done


def test_the_offline_snapshot_is_one_snapshot_of_the_database(store, db_url):
    enroll(store, "alice", 1, 0, 0, 0)
    done = _commit_between_statements(store, db_url, "count(people.id)", lambda o: enroll(o, "bob", 0, 1, 0, 0))
    snap = store.sealed_snapshot()
    assert done
    assert [p["name"] for p in snap.people] == ["alice"]
    assert len(snap.templates) == 1
    assert snap.generation[1] == len(snap.people) and snap.generation[3] == len(snap.templates)


def test_a_gallery_export_is_one_snapshot_of_the_database(store, db_url, tmp_path):
    enroll(store, "alice", 1, 0, 0, 0)
    done = _commit_between_statements(store, db_url, "FROM people", lambda o: enroll(o, "bob", 0, 1, 0, 0))
    result = store.export_gallery(tmp_path / "g.zip")
    assert done and (result.people, result.templates) == (1, 1)


def test_events_verify_is_one_snapshot_of_the_log(store, db_url):
    store.log_event("verify", decision=Decision.MATCH, claimed="alice")
    done = _commit_between_statements(store, db_url, "meta", lambda o: o.log_event("verify", claimed="bob"))
    report = store.verify_events()
    assert done and report.ok and report.checked == 1
    assert store.verify_events().checked == 2
