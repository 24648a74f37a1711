"""The Door screen fed by a video file made of LFW photos: one decision, shown large, logged once."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from faceapp.door import DoorMode
from faceapp.types import Decision

pytestmark = pytest.mark.datasets


def _door(qtbot, ctx, video, mode=DoorMode.RECOGNIZE):
    from faceapp.gui.window import MainWindow

    ctx.settings = ctx.settings.replace(camera=str(video))
    win = MainWindow(ctx, kiosk=True, door_mode=mode)
    qtbot.addWidget(win)
    return win


def _door_events(ctx):
    return [e for e in ctx.store.events() if e.kind == "door"]


def test_the_door_grants_an_enrolled_person(qtbot, ctx, service, lfw_image, make_video):
    service.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
    win = _door(qtbot, ctx, make_video(lfw_image("Colin_Powell", 2)))
    with qtbot.waitSignal(win.door.decided, timeout=60000) as blocker:
        win.show()
    outcome = blocker.args[0]
    assert (outcome.decision, outcome.name) == (Decision.MATCH, "Colin Powell")
    assert win.door.stack.currentWidget() is win.door.result
    assert win.door.result.title.text() == "ACCESS GRANTED"
    assert win.door.result.name.text() == "Colin Powell"
    [event] = _door_events(ctx)
    assert (event.decision, event.decided) == (Decision.MATCH, "Colin Powell")
    win.close()


def test_the_door_denies_a_stranger(qtbot, ctx, service, lfw_image, make_video):
    service.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
    win = _door(qtbot, ctx, make_video(lfw_image("Serena_Williams", 1)))
    with qtbot.waitSignal(win.door.decided, timeout=60000) as blocker:
        win.show()
    outcome = blocker.args[0]
    assert outcome.decision is Decision.NOT_RECOGNIZED and outcome.name is None
    assert win.door.result.title.text() == "ACCESS DENIED"
    [event] = _door_events(ctx)
    assert event.decision is Decision.NOT_RECOGNIZED and event.decided is None
    win.close()


def test_verify_mode_is_driven_from_the_keyboard(qtbot, ctx, service, lfw_image, make_video):
    service.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
    win = _door(qtbot, ctx, make_video(lfw_image("Colin_Powell", 2), frames=80), mode=DoorMode.VERIFY)
    win.show()
    door = win.door
    assert door.name_edit.isVisible()
    with qtbot.waitSignal(door.decided, timeout=60000) as blocker:
        qtbot.keyClicks(door.name_edit, "colin powell")  # any case; completion offers the name
        qtbot.keyClick(door.name_edit, Qt.Key.Key_Return)
    outcome = blocker.args[0]
    assert (outcome.decision, outcome.claimed) == (Decision.MATCH, "Colin Powell")
    win.close()
