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
    with pytest.raises(StoreError, match="sealed with site key"):
        OfflineCache(tmp_path / "door", site_key=crypto.SiteKey.generate())


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
                raise StoreError("server unreachable")
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
        svc._checked_at = 0.0
        svc.gallery()  # nothing changed on the server since: the copy is refreshed all the same
        Flaky.down = True
        svc._checked_at = 0.0
        assert svc.gallery().names == ["alice"] and svc.offline_since is not None
    finally:
        Flaky.down = False
        svc.close()
        cache.close()
