"""Issue 15 item 5 at the kiosk: the door screen on PostgreSQL outlives its server, as the
headless door does (tests/test_headless_offline.py), through the same
:func:`faceapp.store.offline.open_door_store`. Started while the server is down it says so and
decides from its local copy of the gallery, or says it is out of order when it has none; a
running kiosk whose server dies keeps deciding, commits each decision to its outbox before the
screen shows it, and the outbox reaches the server's event log exactly once after a restart.
The real test cluster is stopped with ``pg_ctl stop -m immediate``."""

from __future__ import annotations

import shutil

import pytest

from faceapp import storage
from faceapp.config import Settings
from faceapp.errors import StoreError
from faceapp.outputs.base import LockState
from faceapp.store.offline import open_door_store
from faceapp.store.repository import Store
from faceapp.types import Decision

pytestmark = [pytest.mark.datasets, pytest.mark.postgresql]

ENROLLED = "Colin Powell"


@pytest.fixture
def kiosk_settings(pg_url, tmp_path, monkeypatch, lfw_image, make_video, engine, analyzer):
    """A door on the test cluster (its offline cache in tmp_path) watching a video of an
    enrolled person; the person is enrolled on the server."""
    from faceapp.services import FaceService

    monkeypatch.setattr(storage, "door_cache_dir", lambda: tmp_path / "door-cache")
    settings = Settings(device="cpu", db_url=pg_url, camera=str(make_video(lfw_image("Colin_Powell", 2), frames=60)),
                        door_frames=3, door_timeout_s=20.0, door_reset_s=1.0, door_cooldown_s=0.0,
                        door_attempt_window_s=0.0, antispoof=False)  # a still photo: see tests/gui/conftest.py
    with FaceService(settings, engine=engine, analyzer=analyzer) as admin:
        admin.enroll(ENROLLED, lfw_image("Colin_Powell", 1))
    return settings


def _take_snapshot(url: str) -> None:
    """The copy a door takes while its server answers (what FaceService.gallery() refreshes)."""
    door = open_door_store(url)
    try:
        assert door.offline.refresh(door.store.open()) == 1
    finally:
        door.close()


@pytest.fixture
def kiosk(qtbot, qapp, kiosk_settings, engine, analyzer, tmp_path):
    """kiosk(**settings) -> (context, window): the door kiosk opening its own store, as ``faceapp door``."""
    from faceapp.gui.context import AppContext
    from faceapp.gui.window import MainWindow

    made = []

    def start(**changes):
        ctx = AppContext(kiosk_settings.replace(**changes), engine=engine, analyzer=analyzer, settings_file=tmp_path / "settings.toml")
        win = MainWindow(ctx, kiosk=True)
        qtbot.addWidget(win)
        made.append((ctx, win))
        win.show()
        ctx.start()
        return ctx, win

    yield start
    for ctx, win in made:
        win.close()
        assert ctx.shutdown(), "a worker did not stop"


def _door_events(url: str):
    with Store(url) as server:
        return [e for e in server.events() if e.kind == "door"], server.verify_events().ok


def _stop_deciding(qtbot, door, records) -> None:
    """Leave the door page (no more decisions) and wait for the decision being recorded."""
    door.deactivate()
    n = len(records)
    qtbot.wait(3000)  # longer than the recorder's 2 s budget: a decision in flight comes back
    assert len(records) >= n


def _delivered_once(qtbot, url, door, records) -> list:
    """Wait until every decision made is in the server's log, then one more delivery cycle:
    each exactly once."""
    expected = len([r for r in records if r.committed or r.queued_uid is not None])

    def arrived():
        events, _ok = _door_events(url)
        return len(events) >= expected and not door.recorder.offline.queued()

    qtbot.waitUntil(arrived, timeout=30000)
    qtbot.wait(2 * 2500)  # two more flush cycles (FLUSH_MS) deliver nothing twice
    events, ok = _door_events(url)
    assert ok
    assert len(events) == expected
    assert door.recorder.offline.queued() == []
    return events


def test_a_kiosk_started_while_its_server_is_down_decides_from_its_copy_and_delivers_once(
        qtbot, kiosk, kiosk_settings, pg_cluster, pg_url):
    _take_snapshot(pg_url)
    pg_cluster.stop("immediate")
    try:
        ctx, win = kiosk(door_command=shutil.which("true"))  # a lock command: exit 0 = opened
        door = win.door
        records, dispatches = [], []
        door.recorded.connect(records.append)
        door.dispatched.connect(dispatches.append)
        qtbot.waitUntil(lambda: ctx.ready, timeout=20000)
        assert ctx.server_unreachable
        assert door.offline_banner.isVisible()
        assert "unreachable" in door.offline_banner.text() and "own copy" in door.offline_banner.text()
        qtbot.waitUntil(lambda: any(r.queued_uid for r in records), timeout=60000)
        first = next(r for r in records if r.queued_uid)
        assert (first.outcome.decision, first.outcome.name, first.granted) == (Decision.MATCH, ENROLLED, True)
        assert not first.committed
        assert door.result.title.text() == "ACCESS GRANTED"  # shown once the outbox holds it
        qtbot.waitUntil(lambda: any(d.record is first for d in dispatches), timeout=10000)
        assert next(d for d in dispatches if d.record is first).lock is LockState.OPENED  # the lock opens offline
        assert "kept at the door" in door.result.reason.text()
        _stop_deciding(qtbot, door, records)
        assert all(r.queued_uid and not r.committed for r in records)  # nothing reached the server
    finally:
        pg_cluster.start()
    events = _delivered_once(qtbot, pg_url, door, records)
    assert all("decided offline" in e.detail for e in events)
    qtbot.waitUntil(lambda: not door.offline_banner.isVisible(), timeout=15000)  # the server answers again
    assert not ctx.server_unreachable


def test_a_kiosk_with_no_copy_of_the_gallery_says_it_cannot_start_while_the_server_is_down(
        qtbot, kiosk, kiosk_settings, pg_cluster):
    pg_cluster.stop("immediate")
    try:
        ctx, win = kiosk()
        qtbot.waitUntil(lambda: bool(ctx.store_error), timeout=20000)
        assert ctx.store is None and not ctx.ready
        prompt = win.door.prompt.text()
        assert prompt.startswith("Out of order")
        assert "no local copy of the gallery" in prompt and "until the server answers" in prompt
    finally:
        pg_cluster.start()


def test_a_running_kiosk_whose_server_dies_queues_its_decisions_and_delivers_them_once(
        qtbot, kiosk, kiosk_settings, pg_cluster, pg_url):
    ctx, win = kiosk()
    door = win.door
    records = []
    door.recorded.connect(records.append)
    qtbot.waitUntil(lambda: any(r.committed for r in records), timeout=60000)  # online: logged on the server
    assert not ctx.server_unreachable
    pg_cluster.stop("immediate")  # the server crashes mid-run
    try:
        qtbot.waitUntil(lambda: any(r.queued_uid for r in records), timeout=60000)
        queued = [r for r in records if r.queued_uid]
        assert queued[0].granted and queued[0].outcome.name == ENROLLED
        qtbot.waitUntil(lambda: door.offline_banner.isVisible(), timeout=15000)
        _stop_deciding(qtbot, door, records)
    finally:
        pg_cluster.start()
    queued = [r for r in records if r.queued_uid]
    events = _delivered_once(qtbot, pg_url, door, records)
    assert sum("decided offline" in e.detail for e in events) == len(queued)
    assert all(e.decision is Decision.MATCH for e in events)


def test_while_offline_the_admin_writes_are_refused_and_nothing_is_queued(qtbot, kiosk, kiosk_settings, pg_cluster,
                                                                        pg_url, lfw_image):
    _take_snapshot(pg_url)
    pg_cluster.stop("immediate")
    try:
        ctx, win = kiosk()
        qtbot.waitUntil(lambda: ctx.ready, timeout=20000)
        win.door.deactivate()
        with pytest.raises(StoreError):
            ctx.service.enroll("Serena Williams", lfw_image("Serena_Williams", 1))
        with pytest.raises(StoreError):
            ctx.service.remove(ENROLLED)
        assert ctx.offline.queued() == []  # an admin write is never queued for later
        assert [p.name for p in ctx.offline.store.list_people()] == [ENROLLED]  # nor made on the copy
    finally:
        pg_cluster.start()
    with Store(pg_url) as server:
        assert [p.name for p in server.list_people()] == [ENROLLED]
