"""Issue 12, the store's part: no forged template, names that cannot be confused, an access
log that cannot be quietly rewritten, and face data sealed at rest.

Every test that takes ``db_url`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from dbdump import dump
from PIL import Image

from faceapp.errors import DuplicatePerson, StoreError, UnknownPerson
from faceapp.store import archive, crypto
from faceapp.store.repository import ModelFacts, Store
from faceapp.types import Decision

MODELS = {"m1": ModelFacts(embedding_dim=4, input_size=8)}


def jpeg(size: int = 8, shade: int = 120, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (shade, shade // 2, 200)).save(buf, format=fmt)
    return buf.getvalue()


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def enroll(store: Store, name: str, *values: float, face: bytes | None = None):
    return store.add_person(name, embedding=unit(*(values or (1, 0, 0, 0))), model_id="m1", quality=0.9,
                            face_jpeg=face if face is not None else jpeg())


@pytest.fixture
def store(db_url):
    with Store(db_url, models=MODELS) as s:
        yield s


def raw(url: str, *statements: str) -> None:
    """Run SQL around the application, as someone with the database file or a SQL client
    would (the append-only triggers dropped first where the statement needs it)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def drop_triggers(url: str) -> str:
    if url.startswith("sqlite"):
        return "DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete"
    return "DROP TRIGGER events_append_only ON events"


def untrigger(url: str, *statements: str) -> None:
    raw(url, *drop_triggers(url).split("; "), *statements)


# -- 1. imports that cannot forge ------------------------------------------------------------


def _rewrite_manifest(src: Path, dst: Path, change, *, keep_signature: bool = True) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == archive.MANIFEST:
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            if item.filename == archive.SIGNATURE and not keep_signature:
                continue
            zout.writestr(item, data)


def test_master_key_archive_is_refused_and_nothing_changes(store, db_url, tmp_path):
    """The reported attack: an average face scaled by 100 in an archive opens every door."""
    enroll(store, "alice", 1, 0, 0, 0)
    enroll(store, "bob", 0, 1, 0, 0)
    exported = tmp_path / "gallery.zip"
    store.export_gallery(exported)
    mean = 100 * np.mean([t.embedding for t in store.templates()], axis=0).astype("<f4")
    forged = tmp_path / "forged.zip"

    def master_key(m):
        m["people"] = [{"name": "Master Key", "created_at": "2026-01-01T00:00:00+00:00"}]
        m["templates"] = [dict(m["templates"][0], person="Master Key",
                               embedding=base64.b64encode(mean.tobytes()).decode())]

    _rewrite_manifest(exported, forged, master_key, keep_signature=False)
    before = dump(db_url)
    with pytest.raises(StoreError, match="not signed"):
        store.import_gallery(forged)
    with pytest.raises(StoreError, match="unit length"):
        store.import_gallery(forged, allow_unsigned=True)
    assert dump(db_url) == before
    assert not store.has_person("Master Key")


def test_a_signed_archive_changed_after_export_is_refused(store, tmp_path):
    enroll(store, "alice")
    exported = tmp_path / "gallery.zip"
    store.export_gallery(exported)
    changed = tmp_path / "changed.zip"
    _rewrite_manifest(exported, changed, lambda m: m["people"][0].update(name="mallory"))
    with pytest.raises(StoreError, match="does not match its signature"):
        store.import_gallery(changed)


def test_an_archive_signed_by_another_key_is_refused(store, db_url, tmp_path):
    enroll(store, "alice")
    exported = tmp_path / "gallery.zip"
    other = archive.Signer(b"k" * 32, "0123456789abcdef")
    store.export_gallery(exported, signer=other)
    with pytest.raises(StoreError, match="not by this site's key"):
        store.import_gallery(exported)
    assert store.import_gallery(exported, signer=other).skipped == 1


def _archive_listing_people_without_templates(store, path: Path) -> Path:
    from datetime import UTC, datetime

    archive.write_archive(path, archive.Archive(people=[archive.ArchivedPerson("alice", datetime.now(UTC)),
                                                        archive.ArchivedPerson("nobody", datetime.now(UTC))],
                                                templates=[]), signer=store.gallery_signer())
    return path


def test_a_signed_archive_listing_people_without_templates_is_refused_with_replace(store, db_url, tmp_path):
    """Replacing alice with "no templates" would leave her enrolled with none (never
    recognised): the whole file is refused."""
    enroll(store, "alice")
    path = _archive_listing_people_without_templates(store, tmp_path / "empty.zip")
    before = dump(db_url)
    with pytest.raises(StoreError, match="no templates") as info:
        store.import_gallery(path, on_conflict="replace")
    assert "'alice'" in str(info.value) and "nothing was imported" in str(info.value)
    assert dump(db_url) == before
    assert [(p.name, p.template_count) for p in store.list_people()] == [("alice", 1)]


@pytest.mark.parametrize("on_conflict", ["skip", "error"])
def test_people_without_templates_in_an_archive_are_left_out_with_a_warning(store, tmp_path, on_conflict, caplog):
    """Older databases hold people with no templates (0001 data, an older replace import), and
    older exports list them: without replace they are left out (nobody is enrolled with
    nothing to be recognised by), with a warning and a note in the import's event."""
    enroll(store, "alice")
    path = _archive_listing_people_without_templates(store, tmp_path / "empty.zip")
    with caplog.at_level("WARNING", logger="faceapp.store.repository"):
        r = store.import_gallery(path, on_conflict=on_conflict)
    assert (r.added, r.replaced, r.templates, r.left_out) == (0, 0, 0, 2)
    assert "no templates" in caplog.text and "'nobody'" in caplog.text
    assert [(p.name, p.template_count) for p in store.list_people()] == [("alice", 1)]
    last = store.events(limit=1)[0]
    assert last.kind == "import" and "2 with no templates left out" in last.detail


def test_an_export_leaves_out_people_without_templates_and_imports_whole(db_url, tmp_path):
    """A person with no templates (an older faceapp's replace import erased them, before schema
    0004) is left out of the export, which says so, so that the export can be restored."""
    key = crypto.SiteKey.generate()
    with Store(db_url, site_key=key, models=MODELS) as store:
        enroll(store, "alice")
        bob = enroll(store, "bob", 0, 1, 0, 0)
    raw(db_url, f"DELETE FROM templates WHERE person_id = {bob.id}")
    _as_sealed_before_0004(db_url, key)  # as that older faceapp left it: recorded as it is at the upgrade
    with Store(db_url, site_key=key, models=MODELS) as store:
        exported = tmp_path / "gallery.zip"
        r = store.export_gallery(exported)
        assert (r.people, r.templates, r.left_out) == (1, 1, ("bob",))
        last = store.events(limit=1)[0]
        assert last.kind == "export" and "left out 1 person with no templates" in last.detail
    with Store(f"sqlite:///{tmp_path / 'other.db'}", site_key=key, models=MODELS) as other:
        assert (other.import_gallery(exported).added, [p.name for p in other.list_people()]) == (1, ["alice"])


def test_a_signed_export_imports_into_a_fresh_database_of_the_same_site(store, tmp_path):
    enroll(store, "alice", 1, 2, 3, 4)
    exported = tmp_path / "gallery.zip"
    store.export_gallery(exported)
    with Store(f"sqlite:///{tmp_path / 'other.db'}", models=MODELS) as other:
        r = other.import_gallery(exported)
        assert (r.added, r.templates) == (1, 1)
        t = other.templates()[0]
        np.testing.assert_array_equal(t.embedding, unit(1, 2, 3, 4))
        assert t.face_jpeg == store.templates()[0].face_jpeg
        last = other.events(limit=1)[0]
        assert last.kind == "import" and "1 added" in last.detail and "gallery.zip" in last.detail
        assert "signed by key" in last.detail


def _archive_with(tmp_path: Path, **template_fields) -> Path:
    emb = unit(1, 0, 0, 0).astype("<f4")
    template = {
        "person": "eve", "model_id": "m1", "dim": 4, "quality": 0.9,
        "created_at": "2026-01-01T00:00:00+00:00",
        "embedding": base64.b64encode(emb.tobytes()).decode(), "face": "faces/000001.jpg",
    }
    face = template_fields.pop("face_bytes", jpeg())
    template.update(template_fields)
    manifest = {"format": archive.FORMAT, "version": 2, "exported_at": "2026-01-01T00:00:00+00:00",
                "people": [{"name": "eve", "created_at": "2026-01-01T00:00:00+00:00"}], "templates": [template]}
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(archive.MANIFEST, json.dumps(manifest))
        zf.writestr("faces/000001.jpg", face)
    return path


def _claiming(width: int, height: int) -> bytes:
    """A small JPEG whose header (SOF0) claims ``width`` x ``height`` pixels."""
    import struct

    data = bytearray(jpeg())
    i = data.find(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _b64(arr) -> str:
    return base64.b64encode(np.asarray(arr, dtype="<f4").tobytes()).decode()


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"model_id": "no-such-model"}, "not installed"),
        ({"dim": 3, "embedding": _b64(unit(1, 1, 1))}, "makes embeddings of 4 values"),
        ({"embedding": _b64([np.nan, 0, 0, 0])}, "finite"),
        ({"embedding": _b64([0.5, 0, 0, 0])}, "unit length"),
        ({"face_bytes": jpeg(fmt="PNG")}, "not a JPEG"),
        ({"face_bytes": jpeg(size=16)}, "not the model's 8x8"),
        ({"face_bytes": jpeg(size=224)}, "not the model's 8x8"),  # the wide crop's size, without its mark
        ({"face_bytes": jpeg()[:40]}, "does not decode"),
        ({"face_bytes": _claiming(40000, 40000)}, "not the model's 8x8"),  # a decompression bomb's header
    ],
    ids=["unknown-model", "wrong-size", "nan", "not-unit", "png-face", "face-size", "unmarked-wide-size", "truncated-face",
         "huge-face-header"],
)
def test_each_bad_template_refuses_the_whole_import(store, db_url, tmp_path, fields, reason):
    enroll(store, "alice")
    before = dump(db_url)
    with pytest.raises(StoreError, match=reason):
        store.import_gallery(_archive_with(tmp_path, **fields), allow_unsigned=True)
    assert dump(db_url) == before


def test_a_kept_wide_face_is_imported(store, tmp_path):
    """What enrollment keeps since 4 December (faceapp.stored_face: a marked 224x224 crop, not the
    model's chip) passes the import's face check, so an export of a new gallery imports."""
    from faceapp import stored_face
    from faceapp.types import BBox, Detection, Landmarks

    photo = np.full((300, 300, 3), 128, np.uint8)
    face = stored_face.keep(photo, Detection(BBox(50, 50, 250, 250), 0.99, Landmarks(stored_face.WIDE_TEMPLATE + 38)))
    assert store.import_gallery(_archive_with(tmp_path, face_bytes=face), allow_unsigned=True).added == 1
    assert stored_face.is_wide(store.templates(person="eve")[0].face_jpeg)


def test_a_good_unsigned_archive_needs_allow_unsigned_and_says_so(store, tmp_path):
    path = _archive_with(tmp_path)
    with pytest.raises(StoreError, match="--allow-unsigned"):
        store.import_gallery(path)
    assert store.import_gallery(path, allow_unsigned=True).added == 1
    assert "UNSIGNED" in store.events(limit=1)[0].detail


def test_oversized_members_are_refused_before_they_are_read(store, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_FACE_BYTES", 1000)
    path = _archive_with(tmp_path, face_bytes=jpeg() + b"\0" * 5000)
    with pytest.raises(StoreError, match="more than the 1,000 allowed"):
        store.import_gallery(path, allow_unsigned=True)


def test_every_write_path_refuses_a_non_unit_or_wrong_size_embedding(store):
    enroll(store, "alice")
    tid = store.templates()[0].id
    for bad in (np.full(4, 0.25, np.float32) * 100, unit(1, 1, 1)):
        with pytest.raises(ValueError):
            store.add_person("bob", embedding=bad, model_id="m1", quality=0.9, face_jpeg=jpeg())
        with pytest.raises(ValueError):
            store.add_template("alice", embedding=bad, model_id="m1", quality=0.9, face_jpeg=jpeg())
        with pytest.raises(ValueError):
            store.update_embeddings([(tid, bad)], "m1")
    assert [p.name for p in store.list_people()] == ["alice"]


def test_a_template_forged_into_the_database_matches_nobody(store, db_url):
    """Written around the application (a plain, non-unit embedding): not a template of the
    gallery record, so the gallery is refused as altered (never served with the forgery in it)."""
    enroll(store, "alice", 1, 0, 0, 0)
    pid = store.get_person("alice").id
    blob = (np.ones(4, dtype="<f4") * 100).tobytes().hex()
    literal = f"X'{blob}'" if db_url.startswith("sqlite") else f"'\\x{blob}'::bytea"
    false = "0" if db_url.startswith("sqlite") else "false"
    raw(db_url, "INSERT INTO templates (person_id, embedding, dim, model_id, face_jpeg, quality, created_at, sealed) "
        f"VALUES ({pid}, {literal}, 4, 'm1', {literal}, 0.9, '2026-01-01 00:00:00', {false})")
    with pytest.raises(StoreError, match="gallery record"):
        store.gallery("m1")


def test_a_template_edited_in_place_fails_the_gallery_closed(store, db_url):
    """A recorded template whose sealed embedding was changed (here: another person's blob put in
    its place) fails its seal: the whole gallery is refused naming it, never served without it."""
    enroll(store, "alice", 1, 0, 0, 0)
    enroll(store, "bob", 0, 1, 0, 0)
    a, b = store.templates()
    raw(db_url, f"UPDATE templates SET embedding = (SELECT embedding FROM templates WHERE id = {b.id}) WHERE id = {a.id}")
    with pytest.raises(StoreError, match=f"template {a.id} of person {a.person_id}") as info:
        store.gallery("m1")
    assert "altered" in str(info.value)


# -- 5. an access log that holds --------------------------------------------------------------


def _three_events(store):
    enroll(store, "alice")
    for d in (Decision.MATCH, Decision.NO_MATCH, Decision.MATCH):
        store.log_event("verify", decision=d, claimed="alice", distance=0.1, threshold=0.15)
    return [e.id for e in sorted(store.events(), key=lambda e: e.id)]


def test_an_untouched_log_verifies(store):
    _three_events(store)
    report = store.verify_events()
    assert report.ok and report.checked == 3


def test_the_application_cannot_update_or_delete_events(store, db_url):
    ids = _three_events(store)
    for sql in (f"UPDATE events SET decision = 'match' WHERE id = {ids[1]}", f"DELETE FROM events WHERE id = {ids[0]}"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            raw(db_url, sql)
    assert store.verify_events().ok


def test_an_edited_event_is_found(store, db_url):
    ids = _three_events(store)
    untrigger(db_url, f"UPDATE events SET decision = 'match' WHERE id = {ids[1]}")
    report = store.verify_events()
    assert not report.ok and report.first_bad_id == ids[1] and "edited" in report.problem


def test_a_deleted_event_is_found(store, db_url):
    ids = _three_events(store)
    untrigger(db_url, f"DELETE FROM events WHERE id = {ids[1]}")
    report = store.verify_events()
    assert not report.ok and report.first_bad_id == ids[2] and "deleted" in report.problem


def test_an_inserted_event_is_found(store, db_url):
    ids = _three_events(store)
    rows = dump(db_url)["events"]
    prev_hash = rows[0][-1]  # the hash of the first event: the forger copies the chain's shape
    raw(db_url, "INSERT INTO events (time, kind, decision, claimed, detail, prev_hash, hash) VALUES "
        f"('2026-01-01 00:00:00', 'door', 'match', 'mallory', '', '{prev_hash}', '{'ab' * 32}')")
    report = store.verify_events()
    assert not report.ok and report.first_bad_id is not None and report.first_bad_id > ids[2]


def test_events_cut_off_at_the_end_are_found(store, db_url):
    ids = _three_events(store)
    untrigger(db_url, f"DELETE FROM events WHERE id = {ids[2]}")
    report = store.verify_events()
    assert not report.ok and "at the end were deleted" in report.problem


def test_a_hand_set_end_of_chain_is_found(store, db_url):
    ids = _three_events(store)
    rows = dump(db_url)["events"]
    untrigger(db_url, f"DELETE FROM events WHERE id = {ids[2]}",
              f"UPDATE meta SET value = '{ids[1]} {rows[1][-1]} {'0' * 64}' WHERE key = 'event_head'")
    report = store.verify_events()
    assert not report.ok and "altered" in report.problem


def test_events_cut_off_with_the_end_record_blanked_are_found(store, db_url):
    """The chain's end record exists from the first open on: blanking it does not make a
    log whose newest events were cut off look intact."""
    ids = _three_events(store)
    untrigger(db_url, f"DELETE FROM events WHERE id >= {ids[1]}", "UPDATE meta SET value = '' WHERE key = 'event_head'")
    report = store.verify_events()
    assert not report.ok and "newest event" in report.problem


@pytest.mark.parametrize("head", ["DELETE FROM meta WHERE key = 'event_head'",
                                  "UPDATE meta SET value = '' WHERE key = 'event_head'"])
def test_a_wiped_log_is_found(store, db_url, head):
    _three_events(store)
    untrigger(db_url, "DELETE FROM events", head)
    report = store.verify_events()
    assert not report.ok and "newest event" in report.problem


def test_a_log_that_never_had_an_event_verifies(store):
    report = store.verify_events()
    assert report.ok and report.checked == 0
    store.log_event("verify", decision=Decision.MATCH, claimed="alice")
    assert store.verify_events().ok


def test_a_log_stripped_of_its_hashes_and_chain_key_is_not_re_chained(db_url):
    """Edit an event, clear every hash and delete the chain key's records: faceapp must not
    chain the edited log afresh (only a database migrated from schema 0001 has unchained events)."""
    with Store(db_url, models=MODELS) as store:
        ids = _three_events(store)
    untrigger(db_url, f"UPDATE events SET claimed = 'carol' WHERE id = {ids[1]}",
              "UPDATE events SET hash = NULL, prev_hash = NULL",
              "DELETE FROM meta WHERE key IN ('site_key_id', 'event_chain_key')")
    before = dump(db_url)
    with pytest.raises(StoreError, match="altered"):
        Store(db_url, models=MODELS)
    assert dump(db_url) == before


@pytest.mark.parametrize("gone", ["site_key_id", "event_chain_key", "site_key_id', 'event_chain_key"])
def test_a_database_missing_its_key_records_is_refused_naming_the_problem(db_url, gone):
    """With people enrolled (sealed) but the record of the site key or the chain key gone,
    the database was altered: refused with a one-line StoreError, never sealed afresh."""
    with Store(db_url, models=MODELS) as store:
        enroll(store, "alice")
    raw(db_url, f"DELETE FROM meta WHERE key IN ('{gone}')")
    before = dump(db_url)
    with pytest.raises(StoreError, match="altered") as info:
        Store(db_url, models=MODELS)
    assert "\n" not in str(info.value)
    assert dump(db_url) == before


def test_remove_erases_the_face_data_but_keeps_the_events(store, db_url):
    enroll(store, "alice")
    store.log_event("verify", decision=Decision.NO_MATCH, claimed="alice", distance=0.9, threshold=0.15,
                    detail="an impostor claimed to be alice")
    assert store.remove_person("Alice") == 1
    rows = dump(db_url)
    assert rows["people"] == [] and rows["templates"] == []
    events = store.events()
    assert [e.kind for e in events] == ["remove", "verify"]
    assert events[0].decided == "alice" and "1 template(s)" in events[0].detail
    assert events[1].detail == "an impostor claimed to be alice"
    assert [e.id for e in store.events(person="alice")] == [e.id for e in events]
    assert store.verify_events().ok


def test_rename_keeps_old_events_as_logged_and_logs_itself(store):
    enroll(store, "alice")
    store.log_event("verify", decision=Decision.MATCH, claimed="alice")
    store.rename_person("alice", "Alice Martin")
    events = store.events(person="Alice Martin")
    assert [e.kind for e in events] == ["rename", "verify"]
    assert events[1].claimed == "alice"
    assert store.verify_events().ok


# -- 7. names --------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["alice", "ALICE", "  Alice  ", "Ａｌｉｃｅ"])
def test_names_differing_in_case_or_width_are_one_person(store, other):
    enroll(store, "Alice")
    with pytest.raises(DuplicatePerson):
        enroll(store, other, 0, 1, 0, 0)
    assert store.get_person(other).name == "Alice"


def test_spacing_is_collapsed_and_the_spelling_kept(store):
    enroll(store, "Jean\u00a0 Dupont")
    assert store.get_person("jean dupont").name == "Jean Dupont"


@pytest.mark.parametrize("name", ["Ali\u200bce", "Alice\u200f", "\u202eecilA", "Al\u00adice", "Alice\ufeff", "a\tb"])
def test_invisible_and_bidi_characters_are_refused(store, name):
    with pytest.raises(StoreError, match="invisible or control"):
        enroll(store, name)
    assert store.list_people() == []


def test_unknown_person_lookups_are_refused_the_same_way(store):
    with pytest.raises(UnknownPerson):
        store.get_person("nobody")
    assert not store.has_person("Ali\u200bce")


# -- 6. faces protected at rest --------------------------------------------------------------


def test_no_face_or_template_is_readable_in_the_database(store, db_url):
    face = jpeg(shade=77)
    emb = unit(3, 1, 4, 1)
    enroll(store, "alice", 3, 1, 4, 1, face=face)
    everything = repr(dump(db_url)).encode()
    for row in dump(db_url)["templates"]:
        for value in row:
            if isinstance(value, (bytes, memoryview)):
                assert face not in bytes(value) and emb.astype("<f4").tobytes() not in bytes(value)
    assert face[:20].hex() not in everything.decode()
    assert store.templates()[0].face_jpeg == face


def test_a_database_opened_with_another_key_is_refused(db_url, tmp_path):
    with Store(db_url, models=MODELS) as s:
        enroll(s, "alice")
    with pytest.raises(StoreError, match="sealed with site key"):
        Store(db_url, site_key=crypto.SiteKey.generate())


def test_a_database_from_before_sealing_is_sealed_and_chained_at_first_open(db_url):
    """Schema 0001 kept faces in the clear and events unchained: the first open with a key
    seals every template, chains every event, and the result verifies."""
    from alembic import command

    from faceapp.store import make_engine
    from faceapp.store.migrate import alembic_config, migration_connection

    engine = make_engine(db_url)
    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), "0001")
    face = jpeg(shade=33)
    plain = unit(1, 2, 3, 4).astype("<f4").tobytes()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO people (id, name, created_at, updated_at) VALUES "
                             "(1, 'Alice', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO templates (person_id, embedding, dim, model_id, face_jpeg, quality, created_at) "
                             "VALUES (1, :e, 4, 'm1', :f, 0.9, '2026-01-01 00:00:00')"), {"e": plain, "f": face})
        for kind in ("enroll", "verify"):
            conn.execute(sa.text("INSERT INTO events (time, kind, decided, person_id, detail) VALUES "
                                 "('2026-01-01 00:00:00', :k, 'Alice', 1, '')"), {"k": kind})
    engine.dispose()
    with Store(db_url, models=MODELS) as store:
        [t] = store.templates()
        assert t.face_jpeg == face and t.embedding.tobytes() == plain
        assert store.get_person("alice").name == "Alice"
        report = store.verify_events()
        assert report.ok and report.checked == 2
        store.log_event("verify", decision=Decision.MATCH, claimed="Alice")
        assert store.verify_events().checked == 3
    for row in dump(db_url)["templates"]:
        assert face not in bytes(row[5]) and plain not in bytes(row[2])


def test_logged_names_are_one_line_and_bounded_on_every_database(store):
    """A name typed at the door is logged as typed, on one line, at most 200 characters (the
    same on SQLite and PostgreSQL, which refuses longer text and NUL)."""
    store.log_event("verify", decision=Decision.NO_MATCH, claimed="x" * 300, detail="a\x00b")
    store.log_event("verify", decision=Decision.NO_MATCH, claimed="mallory\x00\n  smith")
    first, second = sorted(store.events(), key=lambda e: e.id)
    assert first.claimed == "x" * 200 and first.detail == "a\ufffdb"
    assert second.claimed == "mallory smith"
    with pytest.raises(ValueError, match="at most 32"):
        store.log_event("k" * 33)
    assert store.verify_events().ok


# -- 8. who is in the gallery, and under which name ----------------------------------------------
#
# Someone who can write the database (its file, a SQL client) but has no key file must not be
# able to bring a removed person back from an earlier copy, or give one person's face another's
# name: each data key is wrapped bound to its person's id and name key, and a MAC'd record
# (meta "gallery_head") authenticates which people (id, name key, name) and templates make up
# the gallery. Every read of templates checks it and fails closed.

LEGACY_DEK_AAD = "faceapp/person/{}/data-key"  # the wrapping before schema 0004 (id only)
LEGACY_CHAIN_AAD = b"faceapp/event-chain-key"


def _rows(url: str, table: str, where: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.exec_driver_sql(f"SELECT * FROM {table} WHERE {where}")]
    finally:
        engine.dispose()


def _insert(url: str, table: str, rows: list[dict]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for row in rows:
                cols = ", ".join(row)
                conn.execute(sa.text(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(':' + c for c in row)})"), row)
    finally:
        engine.dispose()


def test_a_removed_person_restored_from_an_earlier_copy_is_refused(db_url):
    """The review's repro (a): mallory's rows copied back from a backup after her removal."""
    with Store(db_url, models=MODELS) as store:
        enroll(store, "alice", 1, 0, 0, 0)
        mallory = enroll(store, "mallory", 0, 1, 0, 0)
        backup_person = _rows(db_url, "people", f"id = {mallory.id}")
        backup_templates = _rows(db_url, "templates", f"person_id = {mallory.id}")
        store.remove_person("mallory")
        assert store.gallery("m1").names == ["alice"]
        _insert(db_url, "people", backup_person)
        _insert(db_url, "templates", backup_templates)
        for read in (lambda: store.gallery("m1"), store.templates, lambda: store.templates(person="mallory"),
                     lambda: store.face_jpeg(backup_templates[0]["id"]), store.sealed_snapshot):
            with pytest.raises(StoreError, match="gallery record") as info:
                read()
            assert "\n" not in str(info.value) and "altered" in str(info.value)
        report = store.verify_gallery()
        assert not report.ok and "2 people" in report.problem and "1 people" in report.problem
        with pytest.raises(StoreError, match="gallery record"):  # no write blesses the altered gallery
            enroll(store, "bob", 0, 0, 1, 0)
    with Store(db_url, models=MODELS) as reopened:  # nothing cached: a fresh process refuses it too
        with pytest.raises(StoreError, match="gallery record"):
            reopened.gallery("m1")


def test_swapped_names_are_refused(db_url):
    """The review's repro (b): two rows' names swapped, so that mallory's face would open as alice."""
    with Store(db_url, models=MODELS) as store:
        alice = enroll(store, "alice", 1, 0, 0, 0)
        mallory = enroll(store, "mallory", 0, 1, 0, 0)
        raw(db_url, "UPDATE people SET name = 'x', name_key = 'x' WHERE name = 'alice'",
            "UPDATE people SET name = 'alice', name_key = 'alice' WHERE name = 'mallory'",
            "UPDATE people SET name = 'mallory', name_key = 'mallory' WHERE name = 'x'")
        with pytest.raises(StoreError, match="gallery record"):
            store.gallery("m1")
        # Even with a record that matched (only the key's holder can make one; made here with the
        # store's own key), the data keys do not open under the other names: refused, naming who.
        with store._writing() as s:
            store._write_gallery_record(s, store._lock_gallery(s))
        with pytest.raises(StoreError, match=f"person {mallory.id}|person {alice.id}") as info:
            store.gallery("m1")
        assert "name" in str(info.value) and "altered" in str(info.value)
        with pytest.raises(StoreError, match="altered"):
            store.templates()


def test_a_display_name_changed_around_the_store_is_refused(store, db_url):
    """Only the spelling shown (not the name key) changed: the door would log mallory as 'Alice'."""
    enroll(store, "alice", 1, 0, 0, 0)
    enroll(store, "mallory", 0, 1, 0, 0)
    raw(db_url, "UPDATE people SET name = 'Alicia' WHERE name = 'alice'",
        "UPDATE people SET name = 'alice' WHERE name = 'mallory'")
    with pytest.raises(StoreError, match="gallery record"):
        store.gallery("m1")


@pytest.mark.parametrize("change", ["DELETE FROM meta WHERE key = 'gallery_head'",
                                    "UPDATE meta SET value = '' WHERE key = 'gallery_head'"])
def test_a_deleted_or_blanked_gallery_record_is_tampering(db_url, change):
    """A database that has its record is never given a new one: deleting or blanking it (to have
    an altered gallery recorded afresh) is refused, at the next open too."""
    with Store(db_url, models=MODELS) as store:
        enroll(store, "alice")
    raw(db_url, change)
    before = dump(db_url)
    with pytest.raises(StoreError, match="gallery record") as info:
        Store(db_url, models=MODELS).gallery("m1")
    assert "altered" in str(info.value)
    assert dump(db_url) == before


def test_every_write_of_the_store_keeps_its_gallery_record(store, db_url, tmp_path):
    enroll(store, "alice", 1, 0, 0, 0)
    bob = enroll(store, "bob", 0, 1, 0, 0)
    t = store.add_template("alice", embedding=unit(1, 1, 0, 0), model_id="m1", quality=0.9, face_jpeg=jpeg())
    store.remove_template(t.id)
    store.replace_templates("bob", embedding=unit(0, 1, 1, 0), model_id="m1", quality=0.9, face_jpeg=jpeg())
    store.rename_person("bob", "Robert")
    store.rename_person("alice", "Alice")  # the spelling only: the name key stays, the record changes
    store.update_embeddings([(tt, unit(0, 0, 0, 1)) for tt in store.templates(person="robert")], "m1")
    exported = tmp_path / "g.zip"
    store.export_gallery(exported)
    store.remove_person("robert")
    assert store.import_gallery(exported).added == 1
    store.import_gallery(exported, on_conflict="replace")
    assert store.verify_gallery().ok
    with Store(db_url, models=MODELS) as reopened:
        g = reopened.gallery("m1")
        assert sorted(g.names) == ["Alice", "Robert"]
        assert reopened.get_person("robert").id != bob.id
        assert reopened.verify_gallery().ok and reopened.verify_events().ok


def test_rename_rewraps_the_data_key_under_the_new_name(store, db_url):
    alice = enroll(store, "alice", 1, 0, 0, 0)
    before = _rows(db_url, "people", f"id = {alice.id}")[0]["data_key"]
    store.rename_person("alice", "Alice Martin")
    after = _rows(db_url, "people", f"id = {alice.id}")[0]["data_key"]
    assert bytes(after) != bytes(before)
    assert store.gallery("m1").names == ["Alice Martin"]
    # the row as it was (old name, old wrapping) written back: refused
    raw(db_url, f"UPDATE people SET name = 'alice', name_key = 'alice' WHERE id = {alice.id}")
    with pytest.raises(StoreError, match="altered"):
        store.gallery("m1")


def _as_sealed_before_0004(db_url: str, key: crypto.SiteKey) -> None:
    """Make a database what a faceapp of schema 0003 left: data keys and the chain key wrapped
    bound to the person id only, no gallery record, revision 0003."""
    people = _rows(db_url, "people", "1 = 1")
    [chain] = _rows(db_url, "meta", "key = 'event_chain_key'")
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            for p in people:
                aad = f"faceapp/person/{p['id']}/data-key/v2\x00".encode() + p["name_key"].encode()
                dek = key.unwrap(bytes(p["data_key"]), aad=aad)
                conn.execute(sa.text("UPDATE people SET data_key = :k WHERE id = :i"),
                             {"k": key.wrap(dek, aad=LEGACY_DEK_AAD.format(p["id"]).encode()), "i": p["id"]})
            ck = key.unwrap(base64.b64decode(chain["value"]), aad=CHAIN_AAD)
            conn.execute(sa.text("UPDATE meta SET value = :v WHERE key = 'event_chain_key'"),
                         {"v": base64.b64encode(key.wrap(ck, aad=LEGACY_CHAIN_AAD)).decode()})
            conn.exec_driver_sql("DELETE FROM meta WHERE key = 'gallery_head'")
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0003'")
    finally:
        engine.dispose()


def test_a_database_sealed_before_0004_is_bound_and_recorded_once_at_first_open(db_url):
    key = crypto.SiteKey.generate()
    with Store(db_url, site_key=key, models=MODELS) as store:
        enroll(store, "alice", 1, 0, 0, 0)
        enroll(store, "bob", 0, 1, 0, 0)
        store.log_event("verify", decision=Decision.MATCH, claimed="alice")
    _as_sealed_before_0004(db_url, key)
    with Store(db_url, site_key=key, models=MODELS) as store:
        assert sorted(store.gallery("m1").names) == ["alice", "bob"]
        assert store.verify_gallery().ok and store.verify_events().ok
        sealed = [e for e in store.events() if e.kind == "seal-gallery"]
        assert len(sealed) == 1 and "2 data key(s)" in sealed[0].detail
        assert store.info()["revision"] == "0005"
    for p in _rows(db_url, "people", "1 = 1"):  # now bound to their names
        aad = f"faceapp/person/{p['id']}/data-key/v2\x00".encode() + p["name_key"].encode()
        key.unwrap(bytes(p["data_key"]), aad=aad)
    before = dump(db_url)
    with Store(db_url, site_key=key, models=MODELS) as store:  # never again
        assert store.gallery("m1").names
    assert dump(db_url) == before


def test_a_person_restored_from_a_copy_made_before_0004_is_refused(db_url, tmp_path):
    """The backup holds mallory with her data key wrapped the old way: after the upgrade and her
    removal, her rows copied back still do not make the gallery."""
    key = crypto.SiteKey.generate()
    with Store(db_url, site_key=key, models=MODELS) as store:
        enroll(store, "alice", 1, 0, 0, 0)
        mallory = enroll(store, "mallory", 0, 1, 0, 0)
    _as_sealed_before_0004(db_url, key)
    [legacy_chain] = _rows(db_url, "meta", "key = 'event_chain_key'")
    backup_person = _rows(db_url, "people", f"id = {mallory.id}")
    backup_templates = _rows(db_url, "templates", f"person_id = {mallory.id}")
    with Store(db_url, site_key=key, models=MODELS) as store:
        store.remove_person("mallory")
        _insert(db_url, "people", backup_person)
        _insert(db_url, "templates", backup_templates)
        with pytest.raises(StoreError, match="gallery record"):
            store.gallery("m1")
    # ...nor with the chain key put back as the backup had it and the record blanked (what an
    # upgrade from 0003 starts from): alice's data key is bound to her name already
    for change in ("DELETE FROM meta WHERE key = 'gallery_head'", "UPDATE meta SET value = '' WHERE key = 'gallery_head'"):
        raw(db_url, change, f"UPDATE meta SET value = '{legacy_chain['value']}' WHERE key = 'event_chain_key'")
        with pytest.raises(StoreError, match="altered"):
            Store(db_url, site_key=key, models=MODELS).gallery("m1")


def test_a_database_altered_before_0004_is_not_recorded_as_it_is(db_url):
    """A data key that does not open (a row changed around faceapp before the upgrade): the
    upgrade refuses, naming the person, and changes nothing."""
    key = crypto.SiteKey.generate()
    with Store(db_url, site_key=key, models=MODELS) as store:
        enroll(store, "alice", 1, 0, 0, 0)
        bob = enroll(store, "bob", 0, 1, 0, 0)
    _as_sealed_before_0004(db_url, key)
    raw(db_url, f"UPDATE people SET data_key = (SELECT data_key FROM people WHERE name = 'alice') WHERE id = {bob.id}")
    with pytest.raises(StoreError, match=f"person {bob.id}") as info:
        Store(db_url, site_key=key, models=MODELS)
    assert "altered" in str(info.value)


def test_events_verify_reports_an_altered_gallery(db_url, tmp_path, capsys, monkeypatch):
    key_file = tmp_path / "k" / "faceapp.key"
    with Store(db_url, key_file=key_file, models=MODELS) as store:
        enroll(store, "alice", 1, 0, 0, 0)
        mallory = enroll(store, "mallory", 0, 1, 0, 0)
    raw(db_url, f"DELETE FROM templates WHERE person_id = {mallory.id}", f"DELETE FROM people WHERE id = {mallory.id}")
    import argparse

    from faceapp.cli import data_commands

    monkeypatch.setattr(data_commands, "_store", lambda args: Store(db_url, key_file=key_file, models=MODELS))
    code = data_commands.verify_events(argparse.Namespace(json=True))
    out = json.loads(capsys.readouterr().out)
    assert code == 15 and out["ok"] is True and out["gallery_ok"] is False
    assert "gallery record" in out["gallery_problem"]


def test_doors_enrolling_at_once_keep_the_gallery_record(db_url):
    """Two processes' writes at the same moment (PostgreSQL: READ COMMITTED, each statement its own
    snapshot): the record is locked by each write to its commit, so the second writes it over
    the first's people, never over a roster that misses them."""
    import threading

    with Store(db_url, models=MODELS) as first:
        enroll(first, "alice", 1, 0, 0, 0)
    stores = [Store(db_url, models=MODELS) for _ in range(3)]
    errors: list[BaseException] = []

    def work(i: int, s: Store) -> None:
        try:
            for j in range(4):
                enroll(s, f"door{i} person{j}", 1, i + 1, j + 1, 0)
            s.rename_person(f"door{i} person0", f"door{i} renamed")
            s.remove_person(f"door{i} person1")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    with Store(db_url, models=MODELS) as store:
        assert store.verify_gallery().ok
        assert len(store.gallery("m1").names) == 1 + 3 * 3


# -- the gallery rolled back whole (people, templates and record from an older copy) ------------

V1_CHAIN_AAD = b"faceapp/event-chain-key/v2"  # the chain key's wrapping while the record was v1
CHAIN_AAD = b"faceapp/event-chain-key/v3"  # ...and since the record covers created_at (v2)


def _table(url: str, table: str) -> list[dict]:
    return _rows(url, table, "1 = 1")


def _put_back(url: str, people: list[dict], templates: list[dict], record: str) -> None:
    """What someone with the database but not the key can do: the gallery tables and the gallery
    record replaced by an older copy's (the events table left alone)."""
    raw(url, "DELETE FROM templates", "DELETE FROM people")
    _insert(url, "people", people)
    _insert(url, "templates", templates)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE meta SET value = :v WHERE key = 'gallery_head'"), {"v": record})
    finally:
        engine.dispose()


def _record(url: str) -> str:
    return _rows(url, "meta", "key = 'gallery_head'")[0]["value"]


def test_a_gallery_rolled_back_whole_to_before_a_removal_is_refused(db_url, tmp_path, capsys, monkeypatch):
    """People, templates and the gallery record all put back from a copy taken before mallory's
    removal: the record vouches for that copy, but the log holds her removal after her creation."""
    key_file = tmp_path / "k" / "faceapp.key"
    with Store(db_url, key_file=key_file, models=MODELS) as store:
        enroll(store, "alice", 1, 0, 0, 0)
        mallory = enroll(store, "mallory", 0, 1, 0, 0)
        people, templates, record = _table(db_url, "people"), _table(db_url, "templates"), _record(db_url)
        store.remove_person("mallory")
        enroll(store, "bob", 0, 0, 1, 0)
        _put_back(db_url, people, templates, record)
        for read in (lambda: store.gallery("m1"), store.templates, store.sealed_snapshot,
                     lambda: store.face_jpeg(templates[0]["id"])):
            with pytest.raises(StoreError, match=f"person {mallory.id}") as info:
                read()
            assert "removed" in str(info.value) and "altered" in str(info.value) and "\n" not in str(info.value)
        report = store.verify_gallery()
        assert not report.ok and f"person {mallory.id}" in report.problem
        with pytest.raises(StoreError, match=f"person {mallory.id}"):  # no write blesses it
            enroll(store, "carol", 0, 0, 0, 1)
    with Store(db_url, key_file=key_file, models=MODELS) as reopened:
        with pytest.raises(StoreError, match=f"person {mallory.id}"):
            reopened.gallery("m1")
    import argparse

    from faceapp.cli import data_commands

    monkeypatch.setattr(data_commands, "_store", lambda args: Store(db_url, key_file=key_file, models=MODELS))
    code = data_commands.verify_events(argparse.Namespace(json=True))
    out = json.loads(capsys.readouterr().out)
    assert code == 15 and out["ok"] is True and out["gallery_ok"] is False
    assert f"person {mallory.id}" in out["gallery_problem"]


def test_a_person_enrolled_again_after_a_removal_is_recognised(store):
    """The same name after a removal is a new person (a new id): their old removal is not theirs."""
    old = enroll(store, "mallory", 0, 1, 0, 0)
    enroll(store, "alice", 1, 0, 0, 0)
    store.remove_person("mallory")
    again = enroll(store, "Mallory", 0, 1, 1, 0)
    assert again.id != old.id
    assert sorted(store.gallery("m1").names) == ["Mallory", "alice"]
    t = store.add_template("alice", embedding=unit(1, 1, 0, 0), model_id="m1", quality=0.9, face_jpeg=jpeg())
    store.remove_template(t.id)  # a photo's removal names a live person: not their removal
    assert sorted(store.gallery("m1").names) == ["Mallory", "alice"]
    assert store.verify_gallery().ok and store.verify_events().ok


def test_an_id_reused_before_0003_after_its_removal_is_recognised(store):
    """Before schema 0003 a removed person's id could be given to the next enrollee: the log then
    holds the old person's removal under the live person's id, dated before the live one's creation."""
    from datetime import timedelta

    from faceapp.store.models import EventRow

    carol = enroll(store, "carol", 1, 0, 0, 0)
    with store._writing() as s:  # the old person's removal, logged (and chained) as faceapp did then
        store._append_event(s, EventRow(time=carol.created_at - timedelta(days=30), kind="remove", decided="old",
                                        person_id=carol.id,
                                        detail="removed 'old': 1 template(s) and their face photos erased"))
    assert store.gallery("m1").names == ["carol"]
    assert store.verify_gallery().ok and store.verify_events().ok


def test_a_created_at_edited_around_the_store_is_refused_by_the_record(store, db_url):
    """created_at decides whether a logged removal is the live person's: the record covers it, so
    moving it past the removal (to re-admit a rolled-back person) is itself refused."""
    enroll(store, "alice", 1, 0, 0, 0)
    raw(db_url, "UPDATE people SET created_at = created_at + INTERVAL '1 day'" if db_url.startswith("postgresql")
        else "UPDATE people SET created_at = '2099-01-01 00:00:00.000000'")
    with pytest.raises(StoreError, match="gallery record"):
        store.gallery("m1")
    assert not store.verify_gallery().ok


def _v1_value(chain_key: bytes, people: list[dict], templates: list[dict]) -> str:
    """The record as a faceapp of commit 79e5f97 wrote it (no created_at)."""
    import hashlib
    import hmac

    h = hashlib.sha256(b"faceapp/gallery/v1\x00")
    h.update(json.dumps([(p["id"], p["name_key"], p["name"]) for p in sorted(people, key=lambda p: p["id"])],
                        separators=(",", ":")).encode("ascii"))
    h.update(b"\x00")
    h.update(np.asarray([(t["id"], t["person_id"]) for t in sorted(templates, key=lambda t: t["id"])],
                        dtype="<i8").tobytes())
    key = hmac.new(chain_key, b"faceapp/gallery-record-key", hashlib.sha256).digest()
    n, m = len(people), len(templates)
    return f"v1 {n} {m} " + hmac.new(key, f"gallery v1 {n} {m} ".encode() + h.digest(), hashlib.sha256).hexdigest()


def _as_recorded_v1(db_url: str, key: crypto.SiteKey) -> tuple[str, str]:
    """Make a database what 79e5f97 left (schema 0004): a v1 record, the chain key wrapped the v2
    way, no index on events (kind, person_id). Returns (the v1 record, the chain key row)."""
    [chain] = _rows(db_url, "meta", "key = 'event_chain_key'")
    ck = key.unwrap(base64.b64decode(chain["value"]), aad=CHAIN_AAD)
    v1 = _v1_value(ck, _table(db_url, "people"), _table(db_url, "templates"))
    old_chain = base64.b64encode(key.wrap(ck, aad=V1_CHAIN_AAD)).decode()
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE meta SET value = :v WHERE key = 'event_chain_key'"), {"v": old_chain})
            conn.execute(sa.text("UPDATE meta SET value = :v WHERE key = 'gallery_head'"), {"v": v1})
            conn.exec_driver_sql("DROP INDEX ix_events_kind_person_id")
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0004'")
    finally:
        engine.dispose()
    return v1, old_chain


def test_a_v1_record_is_rewritten_as_v2_once_and_never_taken_back(db_url):
    key = crypto.SiteKey.generate()
    with Store(db_url, site_key=key, models=MODELS) as store:
        enroll(store, "alice", 1, 0, 0, 0)
        enroll(store, "bob", 0, 1, 0, 0)
    v1, old_chain = _as_recorded_v1(db_url, key)
    with Store(db_url, site_key=key, models=MODELS) as store:
        assert sorted(store.gallery("m1").names) == ["alice", "bob"]
        assert store.verify_gallery().ok and store.verify_events().ok
        assert [e.kind for e in store.events()].count("seal-gallery-v2") == 1
        assert store.info()["revision"] == "0005"
    assert _record(db_url).startswith("v2 ")
    before = dump(db_url)
    with Store(db_url, site_key=key, models=MODELS) as store:  # once
        assert store.gallery("m1").names
    assert dump(db_url) == before
    # the v1 record put back (it vouches for the same people): refused, not checked as v1
    raw(db_url, f"UPDATE meta SET value = '{v1}' WHERE key = 'gallery_head'")
    with pytest.raises(StoreError, match="gallery record") as info:
        Store(db_url, site_key=key, models=MODELS).gallery("m1")
    assert "altered" in str(info.value)
    # ...nor with the chain key's older wrapping put back too: the log says it was rewritten
    raw(db_url, f"UPDATE meta SET value = '{old_chain}' WHERE key = 'event_chain_key'")
    put_back = dump(db_url)
    with pytest.raises(StoreError, match="rewritten as v2 before") as info:
        Store(db_url, site_key=key, models=MODELS)
    assert "altered" in str(info.value)
    assert dump(db_url) == put_back  # nothing recorded afresh


def test_display_reads_reuse_a_fresh_gallery_check_and_matching_never_does(store, db_url, monkeypatch):
    """A page of thumbnails reads one person's templates per row: each read re-hashing the whole
    roster made a page take seconds at 100,000 people. A check of the same record value within
    GALLERY_CHECK_REUSE_S is reused by those display reads (templates of one person, one face);
    the door's gallery, and every write, always check afresh."""
    from faceapp.store import repository

    enroll(store, "alice", 1, 0, 0, 0)
    enroll(store, "bob", 0, 1, 0, 0)
    calls = []
    real = repository._roster
    monkeypatch.setattr(repository, "_roster", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    for _ in range(10):
        assert len(store.templates(person="alice")) == 1
    assert len(calls) == 1
    store.gallery("m1")
    store.gallery("m1")
    assert len(calls) == 3
    raw(db_url, "UPDATE people SET name = 'Alicia' WHERE name = 'alice'")  # around the store
    with pytest.raises(StoreError, match="gallery record"):
        store.gallery("m1")
    with pytest.raises(StoreError, match="gallery record"):  # the failed check is not reused as good
        store.templates(person="bob")
