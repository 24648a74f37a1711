"""The kiosk drives the door outputs with the RECORDED decision (faceapp.outputs), and a grant
whose lock cannot be opened says so on the screen. Real receivers: a script as the command,
a local HTTP server as the webhook."""

from __future__ import annotations

import json
import sys

import pytest
from test_door_screen import _live_frame

from faceapp.door import DoorMode
from faceapp.outputs import LockState


def _kiosk(qtbot, ctx, **settings):
    from faceapp.gui.window import MainWindow

    ctx.settings = ctx.settings.replace(**settings)
    win = MainWindow(ctx, kiosk=True, door_mode=DoorMode.RECOGNIZE)
    qtbot.addWidget(win)
    win.show()
    door = win.door
    qtbot.waitUntil(lambda: door.machine is not None and door.recorder is not None, timeout=10000)
    return win, door


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "lock.py"
    path.write_text(f"#!{sys.executable}\nimport json, sys\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def receiver(monkeypatch):
    from test_outputs import Receiver

    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    r = Receiver()
    yield r
    r.close()


def test_a_grant_runs_the_command_and_posts_the_webhook_with_its_event_id(qtbot, ctx, tmp_path, receiver):
    seen = tmp_path / "stdin.json"
    win, door = _kiosk(qtbot, ctx, door_command=_script(tmp_path, f"open({str(seen)!r}, 'w').write(sys.stdin.read())"),
                       door_webhook_url=receiver.url)
    with qtbot.waitSignal(door.dispatched, timeout=10000) as blocker:
        for _ in range(3):
            ctx.camera.frame.emit(_live_frame("alice"))
    dispatch = blocker.args[0]
    assert dispatch.lock is LockState.OPENED and dispatch.record.granted
    event_id = dispatch.record.event_id
    assert json.loads(seen.read_text())["event_id"] == event_id
    assert json.loads(receiver.wait_for(1)[0][1])["event_id"] == event_id
    assert door.result.title.text() == "ACCESS GRANTED"
    win.close()
    door.outputs.close()


def test_a_lock_that_cannot_be_opened_shows_lock_unreachable(qtbot, ctx, tmp_path):
    win, door = _kiosk(qtbot, ctx, door_command=_script(tmp_path, "sys.exit(2)"))
    with qtbot.waitSignal(door.dispatched, timeout=10000) as blocker:
        for _ in range(3):
            ctx.camera.frame.emit(_live_frame("alice"))
    assert blocker.args[0].lock_unreachable
    assert door.result.title.text() == "LOCK UNREACHABLE"
    assert "could not be opened" in door.result.reason.text()
    door.outputs.flush_events()
    assert [e.kind for e in ctx.store.events()].count("door_lock_failed") == 1
    win.close()
    door.outputs.close()


def test_without_outputs_nothing_is_dispatched(qtbot, ctx):
    win, door = _kiosk(qtbot, ctx)
    got = []
    door.dispatched.connect(got.append)
    with qtbot.waitSignal(door.recorded, timeout=10000):
        for _ in range(3):
            ctx.camera.frame.emit(_live_frame("alice"))
    assert got == [] and door.outputs is None and door.result.title.text() == "ACCESS GRANTED"
    win.close()


def test_the_door_page_locks_the_relay_at_once_even_when_the_models_never_load(qtbot, qapp, sqlite_url, tmp_path):
    # the kiosk restarted after a crash while open: the relock is sent when the page starts the
    # door, not when the models are ready (they may fail: corrupt weights, out of memory)
    import os
    import select

    from test_outputs import RELOCK

    from faceapp.config import Settings
    from faceapp.gui.context import AppContext
    from faceapp.gui.pages.door import DoorPage
    from faceapp.storage import open_store

    master, slave = os.openpty()
    store = open_store(sqlite_url)
    settings = Settings(device="cpu", db_url=sqlite_url, camera=str(tmp_path / "none.avi"), antispoof=False,
                        door_serial=os.ttyname(slave))
    ctx = AppContext(settings, store=store, settings_file=tmp_path / "settings.toml")
    try:
        assert not ctx.ready  # no engine: never ready
        page = DoorPage(ctx)
        qtbot.addWidget(page)
        ctx.engine_failed.emit("the face models could not be loaded")
        assert select.select([master], [], [], 5.0)[0] and os.read(master, 64) == RELOCK
        assert page.outputs is not None
        page.outputs.close()
    finally:
        assert ctx.shutdown()
        store.close()
        os.close(master)
        os.close(slave)
