"""Issue 15 item 5: a door that outlives its server. The real test cluster is stopped with
``pg_ctl stop -m immediate`` in the middle of a run and started again: the door keeps deciding
from its local snapshot, commits each decision to its local outbox before acting on it, and
delivers the outbox exactly once when the server is back: no decision lost, none doubled."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from faceapp.door import DoorMode, DoorOutcome
from faceapp.door_log import DoorRecorder
from faceapp.errors import StoreError
from faceapp.store import crypto
from faceapp.store.offline import OfflineCache
from faceapp.store.repository import Store
from faceapp.types import Decision

FACE = np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32)


def grant(name: str) -> DoorOutcome:
    return DoorOutcome(Decision.MATCH, DoorMode.RECOGNIZE, None, name, 0.05, 0.15, 3, "recognize: 3 frames agreed")


def stranger() -> DoorOutcome:
    return DoorOutcome(Decision.NOT_RECOGNIZED, DoorMode.RECOGNIZE, None, None, 0.9, 0.15, 3, "recognize: 3 frames")


@pytest.fixture
def site_key():
    return crypto.SiteKey.load_or_create(crypto.default_key_path())


def test_the_door_decides_and_queues_while_the_server_is_down_and_delivers_once(pg_cluster, pg_url, tmp_path,
                                                                             site_key):
    server = Store(pg_url)
    server.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"face")
    cache = OfflineCache(tmp_path / "door", site_key=site_key)
    assert cache.refresh(server) == 1
    recorder = DoorRecorder(server, budget_s=1.0, attempt_wait_s=0.3, offline=cache)
    try:
        first = recorder.record(grant("alice"))
        assert first.committed and first.granted and first.queued_uid is None

        pg_cluster.stop("immediate")  # the server crashes mid-run
        assert cache.gallery("m1").names == ["alice"]  # decisions go on from the snapshot
        offline = [recorder.record(grant("alice")), recorder.record(stranger()), recorder.record(grant("alice"))]
        assert [r.granted for r in offline] == [True, False, True]
        assert all(r.queued_uid and not r.committed for r in offline)
        assert [q.uid for q in cache.queued()] == [r.queued_uid for r in offline]

        pg_cluster.start()
        # a delivery that committed on the server but crashed before its local delete...
        item = cache.queued()[0]
        server.log_event(item.kind, decision=Decision(item.fields["decision"]), decided=item.fields["decided"],
                         detail="first try", time=datetime.fromisoformat(item.fields["time"]), uid=item.uid)
        # ...is delivered again, and the server keeps one event for it
        assert recorder.flush_pending(budget_s=10) == 3
        assert cache.queued() == []
        door_events = [e for e in server.events() if e.kind == "door"]
        assert len(door_events) == 4
        assert [e.decision for e in sorted(door_events, key=lambda e: e.time)] == [
            Decision.MATCH, Decision.MATCH, Decision.NOT_RECOGNIZED, Decision.MATCH]
        assert server.verify_events().ok
    finally:
        recorder.close()
        cache.close()
        server.close()


def test_a_door_with_no_snapshot_refuses_to_decide(tmp_path, site_key):
    cache = OfflineCache(tmp_path / "door", site_key=site_key)
    try:
        with pytest.raises(StoreError, match="no local copy"):
            cache.gallery("m1")
    finally:
        cache.close()


def test_the_snapshot_is_sealed_and_owner_only(pg_url, tmp_path, site_key):
    face = b"\xff\xd8distinctive-face-bytes\xff\xd9"
    with Store(pg_url) as server:
        server.add_person("bob", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=face)
        cache = OfflineCache(tmp_path / "door", site_key=site_key)
        cache.refresh(server)
        cache.close()
    data = cache.path.read_bytes()
    assert face not in data and FACE.astype("<f4").tobytes() not in data
    assert cache.path.stat().st_mode & 0o077 == 0
    # opened with another key (a rotation): the copy is dropped, never opened, and the file stays 0600
    other = OfflineCache(tmp_path / "door", site_key=crypto.SiteKey.generate())
    try:
        assert other.rebuilt and other.snapshot_taken_at is None
        with pytest.raises(StoreError, match="no local copy"):
            other.gallery("m1")
    finally:
        other.close()
    assert cache.path.stat().st_mode & 0o077 == 0


def test_the_door_service_falls_back_to_its_snapshot_and_back(pg_cluster, pg_url, tmp_path, site_key):
    from types import SimpleNamespace

    from faceapp.config import Settings
    from faceapp.services import FaceService

    server = Store(pg_url)
    server.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"face")
    cache = OfflineCache(tmp_path / "door", site_key=site_key)
    svc = FaceService(Settings(device="cpu"), store=server, engine=SimpleNamespace(model_id="m1"),
                      analyzer=object(), offline=cache)
    try:
        assert svc.gallery().names == ["alice"]  # and the snapshot is taken
        assert cache.snapshot_taken_at is not None
        pg_cluster.stop("immediate")
        svc._checked_at = 0.0  # do not wait the 5 s a pushed gallery is trusted for
        assert svc.gallery().names == ["alice"] and svc.offline_since is not None
        pg_cluster.start()
        server.add_person("bob", embedding=np.array([0, 0, 1, 0], np.float32), model_id="m1", quality=1.0,
                          face_jpeg=b"face")
        svc._checked_at = 0.0
        assert sorted(svc.gallery().names) == ["alice", "bob"] and svc.offline_since is None
        assert sorted(cache.gallery("m1").names) == ["alice", "bob"]
    finally:
        svc.close()
        cache.close()


def _unreachable() -> StoreError:
    """A StoreError as the store raises it when the server cannot be reached (its cause a
    connection failure: faceapp.store.db.server_unreachable)."""
    exc = StoreError("cannot open database: connection refused")
    exc.__cause__ = ConnectionRefusedError("connection refused")
    return exc


def test_a_failed_refresh_of_the_doors_copy_is_retried_before_an_outage(tmp_path, site_key):
    """A removed person must not come back in an outage because one refresh of the door's local
    copy failed: the refresh is retried on the next checks, not only at the next change."""
    from types import SimpleNamespace

    from faceapp.config import Settings
    from faceapp.services import FaceService

    server = Store(f"sqlite:///{tmp_path}/server.db")
    server.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"face")
    server.add_person("mallory", embedding=np.array([0, 0, 1, 0], np.float32), model_id="m1", quality=1.0,
                      face_jpeg=b"face")
    cache = OfflineCache(tmp_path / "door", site_key=site_key)

    class Flaky:  # the server; ``down`` fails every call as an unreachable server does
        down = False

        def __getattr__(self, name):
            if Flaky.down:
                raise _unreachable()
            return getattr(server, name)

    svc = FaceService(Settings(device="cpu"), store=Flaky(), engine=SimpleNamespace(model_id="m1"),
                      analyzer=object(), offline=cache)
    try:
        assert sorted(svc.gallery().names) == ["alice", "mallory"]
        server.remove_person("mallory")
        real = cache.refresh
        cache.refresh = lambda store: (_ for _ in ()).throw(StoreError("database is locked"))
        svc._checked_at = 0.0
        assert svc.gallery().names == ["alice"]  # online: the server's gallery; the copy failed to refresh
        cache.refresh = real
        svc._checked_at = svc._offline_retry_at = 0.0  # do not wait the retry interval
        svc.gallery()  # nothing changed on the server since: the copy is refreshed all the same
        Flaky.down = True
        svc._checked_at = 0.0
        assert svc.gallery().names == ["alice"] and svc.offline_since is not None
    finally:
        Flaky.down = False
        svc.close()
        cache.close()


# -- the outbox is authenticated (a MAC per queued decision, its sequence checked) ----------


def _queue_three(cache: OfflineCache) -> list[str]:
    t = datetime(2026, 12, 1, 8, 0, 0)
    return [cache.enqueue("door", decision=Decision.MATCH, decided="alice", distance=0.05, threshold=0.15,
                          detail="recognize: 3 frames agreed", time=t.replace(minute=i)) for i in range(3)]


def _sql(cache: OfflineCache, *statements: str) -> None:
    """Change the door's cache file around the application, as someone with the file would."""
    import sqlite3

    conn = sqlite3.connect(cache.path)
    try:
        for sql in statements:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def _delivered(server: Store) -> tuple[list, list]:
    """(authentic door decisions, tampering reports) the server recorded, oldest first."""
    events = sorted(server.events(), key=lambda e: e.id)
    return ([e for e in events if e.kind == "door"], [e for e in events if e.kind == "outbox-tamper"])


@pytest.mark.parametrize("tamper, authentic, problem", [
    pytest.param([], 3, None, id="untouched"),
    pytest.param(["UPDATE outbox SET payload = replace(payload, '\"alice\"', '\"mallory\"') WHERE seq = 2"], 2,
                 "failed its authentication", id="edited"),
    pytest.param(["UPDATE outbox SET payload = replace(payload, 'match', 'not_recognized') WHERE seq = 1"], 2,
                 "failed its authentication", id="decision-edited"),
    pytest.param(["DELETE FROM outbox WHERE seq = 2"], 2, "missing", id="dropped-in-the-middle"),
    pytest.param(["DELETE FROM outbox WHERE seq = 1"], 2, "missing", id="dropped-first"),
    pytest.param(["DELETE FROM outbox WHERE seq = 3"], 2, "missing", id="dropped-last"),
    pytest.param(["DELETE FROM outbox"], 0, "missing", id="all-dropped"),
    pytest.param(["INSERT INTO outbox (seq, uid, payload, key_id, mac) SELECT 4, 'door-forged', payload, key_id, "
                  "mac FROM outbox WHERE seq = 3"], 3, "failed its authentication", id="forged-copy"),
    pytest.param(["UPDATE outbox SET seq = 5 WHERE seq = 3"], 2, "missing", id="renumbered"),
    pytest.param(["UPDATE outbox SET mac = NULL WHERE seq = 2"], 2, "failed its authentication", id="mac-removed"),
    pytest.param(["DELETE FROM outbox WHERE seq = 3", "DELETE FROM outbox_state"], 0, "record of its sequence",
                 id="dropped-and-state-deleted"),
    pytest.param(["DELETE FROM outbox WHERE seq = 3", "UPDATE outbox_state SET issued = 2"], 2,
                 "record of its sequence", id="dropped-and-state-edited"),
])
def test_an_outbox_changed_behind_the_doors_back_is_reported_never_recorded_as_authentic(
        tmp_path, site_key, caplog, tamper, authentic, problem):
    """Someone who can write the door's cache file drops or edits decisions queued while the
    server was unreachable: each queued decision carries a MAC (a key derived from the site
    key, over its content and its sequence number) and the outbox a MAC'd record of the
    sequence numbers issued and delivered; at delivery an entry that fails its MAC, and every
    number missing, is logged on the server as tampering, not as a decision."""
    server = Store(f"sqlite:///{tmp_path}/server.db")
    cache = OfflineCache(tmp_path / "door", site_key=site_key)
    try:
        uids = _queue_three(cache)
        _sql(cache, *tamper)
        caplog.clear()
        cache.deliver(server)
        door, reports = _delivered(server)
        assert len(door) == authentic
        assert all(e.decided == "alice" and e.decision == Decision.MATCH and "decided offline" in e.detail
                   for e in door)
        assert {e.time.replace(tzinfo=None) for e in door} <= {datetime(2026, 12, 1, 8, i) for i in range(3)}
        if problem is None:
            assert reports == [] and [e.id for e in door] and cache.queued() == []
            assert not [r for r in caplog.records if r.levelname == "ERROR"]
        else:
            assert reports and all(e.decision is None and e.decided is None for e in reports)
            assert any(problem in e.detail for e in reports), [e.detail for e in reports]
            assert any("tamper" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
        assert cache.queued() == []
        assert server.verify_events().ok
        # delivered once: a second delivery (also after a reopen) reports nothing more
        cache.close()
        cache = OfflineCache(tmp_path / "door", site_key=site_key)
        before = len(server.events())
        cache.deliver(server)
        assert len(server.events()) == before
        assert uids
    finally:
        cache.close()
        server.close()


def test_a_delivery_that_crashed_before_its_local_delete_is_not_tampering(tmp_path, site_key):
    server = Store(f"sqlite:///{tmp_path}/server.db")
    cache = OfflineCache(tmp_path / "door", site_key=site_key)
    try:
        _queue_three(cache)
        first = cache.queued()[0]
        server.log_event(first.kind, decision=Decision.MATCH, decided="alice", uid=first.uid, detail="first try")
        assert cache.deliver(server) == 3
        door, reports = _delivered(server)
        assert len(door) == 3 and reports == []
    finally:
        cache.close()
        server.close()


# -- a door whose site key was rotated -------------------------------------------------------


def _rotate(url: str, key_file) -> crypto.SiteKey:
    with Store(url, key_file=key_file) as admin:  # `faceapp db rotate-key`, on the admin's machine
        new = crypto.SiteKey.generate()
        backup = crypto.install_key(key_file, new)
        admin.rotate_site_key(new)
        crypto.commit_rotation(backup)
    return new


@pytest.mark.parametrize("old_key_kept", [False, True], ids=["old-key-gone", "old-key-kept"])
def test_after_a_key_rotation_a_door_starts_on_a_rebuilt_cache_that_keeps_its_outbox(tmp_path, old_key_kept):
    """After `faceapp db rotate-key` (the new key file copied to the door) the door's cache,
    sealed with the old key, is rebuilt instead of refusing the door's start; the decisions
    it had queued stay queued. With the old key still beside the door's key file they are
    authenticated and re-sealed under the new key; without it they cannot be authenticated
    and are delivered as such, never as authentic decisions."""
    import shutil

    key_file = tmp_path / "keys" / "faceapp.key"
    url = f"sqlite:///{tmp_path}/server.db"
    with Store(url, key_file=key_file) as server:
        server.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"face")
        cache = OfflineCache(tmp_path / "door", site_key=crypto.SiteKey.load(key_file), key_file=key_file)
        cache.refresh(server)
        uids = _queue_three(cache)  # the server was unreachable
        cache.close()
    if old_key_kept:
        shutil.copy(key_file, tmp_path / "old.key")
    _rotate(url, key_file)
    if old_key_kept:
        (tmp_path / "old.key").rename(key_file.with_name("faceapp.key.old-20261201T080000"))

    cache = OfflineCache(tmp_path / "door", site_key=crypto.SiteKey.load(key_file), key_file=key_file)
    try:
        assert cache.snapshot_taken_at is None  # the copy sealed with the old key is gone
        assert [q.uid for q in cache.queued()] == uids
        with Store(url, key_file=key_file) as server:
            assert cache.refresh(server) == 1
            assert cache.gallery("m1").names == ["alice"]
            cache.deliver(server)
            door, reports = _delivered(server)
            unverified = [e for e in server.events() if e.kind == "outbox-unverified"]
            assert reports == []
            if old_key_kept:
                assert len(door) == 3 and unverified == []
            else:
                entries = [e for e in unverified if "queued decision #" in e.detail]
                assert door == [] and len(entries) == 3 and all(e.decision is None for e in unverified)
                assert all("cannot be authenticated" in e.detail and "alice" in e.detail for e in entries)
            assert cache.queued() == []
    finally:
        cache.close()


def test_a_running_door_follows_a_key_rotation_and_its_queue_stays_authentic(tmp_path):
    """A door running on the old key when the rotation commits: its next refresh takes the new
    key from its key file, rebuilds the copy under it and re-seals the queued decisions."""
    key_file = tmp_path / "keys" / "faceapp.key"
    url = f"sqlite:///{tmp_path}/server.db"
    server = Store(url, key_file=key_file)
    cache = OfflineCache(tmp_path / "door", site_key=crypto.SiteKey.load(key_file), key_file=key_file)
    try:
        server.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"face")
        cache.refresh(server)
        uids = _queue_three(cache)
        new = _rotate(url, key_file)
        server.add_person("bob", embedding=np.array([0, 0, 1, 0], np.float32), model_id="m1", quality=1.0,
                          face_jpeg=b"face")
        assert cache.refresh(server) == 2
        assert sorted(cache.gallery("m1").names) == ["alice", "bob"]
        assert cache.store.site_key_id == new.key_id
        assert [q.uid for q in cache.queued()] == uids
        assert cache.deliver(server) == 3
        door, reports = _delivered(server)
        assert len(door) == 3 and reports == []
    finally:
        cache.close()
        server.close()


def test_a_refresh_that_keeps_failing_is_retried_at_an_interval_and_reported_once(tmp_path, site_key, caplog):
    """A door's local copy that cannot be written (disk full) is not read from the server and
    rewritten on every frame, nor logged on every frame: retried every OFFLINE_RETRY_S, one error."""
    from types import SimpleNamespace

    from faceapp.config import Settings
    from faceapp.services import FaceService

    server = Store(f"sqlite:///{tmp_path}/server.db")
    server.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"face")
    cache = OfflineCache(tmp_path / "door", site_key=site_key)
    tries = []
    cache.refresh = lambda store: (tries.append(1), (_ for _ in ()).throw(StoreError("disk full")))[1]
    svc = FaceService(Settings(device="cpu"), store=server, engine=SimpleNamespace(model_id="m1"),
                      analyzer=object(), offline=cache)
    try:
        with caplog.at_level("ERROR", logger="faceapp.services"):
            for _ in range(100):
                svc._checked_at = 0.0  # every frame asks the store
                assert svc.gallery().names == ["alice"]
        assert len(tries) == 1
        assert sum("could not be refreshed" in r.getMessage() for r in caplog.records) == 1
        svc._checked_at = svc._offline_retry_at = 0.0  # the interval has passed
        svc.gallery()
        assert len(tries) == 2
    finally:
        svc.close()
        cache.close()


@pytest.mark.parametrize("error", ["altered", "rotated"])
def test_a_server_that_answers_with_an_error_is_not_an_outage(tmp_path, site_key, error):
    """Only a server that cannot be reached sends the door to its local copy: a gallery the
    server refuses as altered (its record does not match), or a site key this door does not
    hold, must fail closed (the door denies and says why), not be decided from an older copy."""
    from types import SimpleNamespace

    from faceapp.config import Settings
    from faceapp.services import FaceService

    server = Store(f"sqlite:///{tmp_path}/server.db")
    server.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"face")
    cache = OfflineCache(tmp_path / "door", site_key=site_key)
    refusal = {"altered": StoreError("the gallery record does not match: it was altered"),
               "rotated": StoreError("the site key was rotated; this process does not hold the new key")}[error]

    class Refusing:
        refuse = False

        def __getattr__(self, name):
            if Refusing.refuse and name in ("gallery", "generation"):
                raise refusal
            return getattr(server, name)

    svc = FaceService(Settings(device="cpu"), store=Refusing(), engine=SimpleNamespace(model_id="m1"),
                      analyzer=object(), offline=cache)
    try:
        assert svc.gallery().names == ["alice"]  # and the door's copy is taken
        Refusing.refuse = True
        svc._checked_at = 0.0
        with pytest.raises(StoreError, match="altered|rotated"):
            svc.gallery()
        assert svc.offline_since is None
    finally:
        svc.close()
        cache.close()
