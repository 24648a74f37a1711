"""The Door screen fed by a video file made of LFW photos: one decision, shown large, logged once;
and fed hand-made frame results while another connection holds the database's write lock: a
grant that cannot be logged is denied, and the screen stays live while the write waits."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from faceapp.door import DoorMode
from faceapp.types import Decision

datasets = pytest.mark.datasets  # the tests on LFW videos


def _door(qtbot, ctx, video, mode=DoorMode.RECOGNIZE):
    from faceapp.gui.window import MainWindow

    ctx.settings = ctx.settings.replace(camera=str(video))
    win = MainWindow(ctx, kiosk=True, door_mode=mode)
    qtbot.addWidget(win)
    return win


def _door_events(ctx):
    return [e for e in ctx.store.events() if e.kind == "door"]


@datasets
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


@datasets
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


@datasets
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


@datasets
def test_with_liveness_on_the_door_asks_for_the_challenge_and_a_still_photo_is_denied(
    qtbot, ctx, service, lfw_image, make_video
):
    from faceapp.gui.messages import LIVENESS_HINT_TEXT
    from faceapp.landmarks.liveness import LivenessHint

    service.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
    ctx.settings = ctx.settings.replace(liveness=True, liveness_time_limit_s=2.0, door_timeout_s=8.0)
    win = _door(qtbot, ctx, make_video(lfw_image("Colin_Powell", 2), frames=120))
    door = win.door
    prompts, bars = [], []
    shown = door._set_prompt

    def record(text, *, error=False):
        prompts.append(text)
        if door.live_bar.isVisible():
            bars.append(door.live_bar.format())
        shown(text, error=error)

    door._set_prompt = record
    with qtbot.waitSignal(door.decided, timeout=60000) as blocker:
        win.show()
    outcome = blocker.args[0]
    # the photo matches Colin Powell, but it never blinks or turns: no entry
    assert outcome.decision is Decision.LIVENESS_TIMEOUT and outcome.name is None
    assert outcome.detail.startswith("liveness (")
    challenge = {LIVENESS_HINT_TEXT[h] for h in (LivenessHint.BLINK, LivenessHint.TURN_LEFT, LivenessHint.TURN_RIGHT)}
    assert challenge & set(prompts), prompts  # the visitor was asked to blink or to turn
    assert any(b.startswith("Liveness check:") and b.endswith("s left") for b in bars), bars
    assert door.result.title.text() == "ACCESS DENIED"
    assert "Did not blink / turn in time" in door.result.reason.text()
    [event] = _door_events(ctx)
    assert (event.decision, event.decided) == (Decision.LIVENESS_TIMEOUT, None)
    assert event.detail.startswith("liveness (")
    win.close()


@datasets
def test_the_live_view_draws_the_68_landmarks_when_toggled(qtbot, ctx, lfw_image, make_video):
    from faceapp.gui.window import MainWindow

    ctx.settings = ctx.settings.replace(camera=str(make_video(lfw_image("Colin_Powell", 2), frames=200)))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    live = win.live
    win.show_page(live)
    qtbot.waitUntil(lambda: len(live.view._overlays) == 1, timeout=60000)
    assert np.asarray(live.view._overlays[0].points).shape == (5, 2)
    live.landmarks_box.setChecked(True)
    assert ctx.settings.show_landmarks
    qtbot.waitUntil(lambda: np.asarray(live.view._overlays[0].points).shape == (68, 2), timeout=60000)
    ov = live.view._overlays[0]
    assert ov.contours and "yaw" in ov.detail and "eyes" in ov.detail
    assert "landmarks" in live.info.text()
    live.landmarks_box.setChecked(False)
    qtbot.waitUntil(lambda: np.asarray(live.view._overlays[0].points).shape == (5, 2), timeout=60000)
    win.close()


def test_frames_carry_landmarks_only_while_a_page_uses_them(window, ctx):
    import dataclasses

    ctx.apply_settings(dataclasses.replace(ctx.settings, liveness=True, show_landmarks=False))
    window.show_page(window.live)
    assert ctx.landmark_analyzer_if_wanted() is None  # liveness is the door's: not needed on Live
    window.show_page(window.door)
    assert ctx.landmark_analyzer_if_wanted() is ctx.analyzer
    window.show_page(window.people)
    assert ctx.landmark_analyzer_if_wanted() is None
    ctx.apply_settings(dataclasses.replace(ctx.settings, show_landmarks=True))
    assert ctx.landmark_analyzer_if_wanted() is ctx.analyzer  # drawn wherever the camera shows


# -- the access log is locked: fail secure, and never freeze ----------------------------------
def _live_frame(name: str = "alice", distance: float = 0.0):
    """A LiveFrame with one good face whose nearest enrolled candidate is ``name``."""
    from PySide6.QtGui import QImage

    from faceapp.gui.context import LiveFrame
    from faceapp.pipeline import FaceObservation, FaceResult, FrameResult
    from faceapp.types import AlignedFace, BBox, Candidate, Detection, Landmarks, QualityReport

    det = Detection(BBox(200, 100, 400, 340), 0.99, Landmarks(np.full((5, 2), 300.0)))
    aligned = AlignedFace(np.zeros((150, 150, 3), np.uint8), det, np.eye(2, 3))
    obs = FaceObservation(aligned, QualityReport(200.0, 120.0, 80.0, 0.99), np.ones(128, np.float32))
    face = FaceResult(obs, (Candidate(name, distance),), 0.36)
    result = FrameResult(0, np.zeros((480, 640, 3), np.uint8), (face,), {}, (det,))
    image = QImage(640, 480, QImage.Format.Format_RGB888)
    image.fill(0)
    return LiveFrame(result, image)


@pytest.fixture
def kiosk(qtbot, ctx):
    from faceapp.gui.window import MainWindow

    win = MainWindow(ctx, kiosk=True, door_mode=DoorMode.RECOGNIZE)
    qtbot.addWidget(win)
    win.show()
    door = win.door
    qtbot.waitUntil(lambda: door.machine is not None and door.recorder is not None, timeout=10000)
    yield door
    win.close()


class _Ticker:
    """A QTimer in the UI thread counting how often it fired (it cannot fire while the UI
    thread is blocked)."""

    def __init__(self, interval_ms: int = 20) -> None:
        from PySide6.QtCore import QTimer

        self.count = 0
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.count += 1


def test_a_grant_that_cannot_be_logged_is_denied_and_the_screen_stays_live(qtbot, ctx, kiosk):
    from dblock import WriteLock

    door = kiosk
    door.recorder.budget_s = 0.8
    ticker = _Ticker()
    seen_checking = []
    with WriteLock(ctx.store.engine.url):  # an import in another process holds the write lock
        with qtbot.waitSignal(door.decided, timeout=10000) as blocker:
            for _ in range(3):
                ctx.camera.frame.emit(_live_frame("alice"))
            seen_checking.append((door.result.title.text(), door.stack.currentWidget() is door.result, ticker.count))
            door.decided.connect(lambda _o: seen_checking.append(("decided", None, ticker.count)))
    (title, on_result, ticks_at_decision), (_, _, ticks_at_record) = seen_checking
    assert (title, on_result) == ("Checking...", True)  # neutral until the commit returns
    assert ticks_at_record - ticks_at_decision >= 5  # the UI thread kept running while the write waited
    outcome = blocker.args[0]
    assert outcome.decision is Decision.LOG_UNAVAILABLE and not outcome.granted and outcome.event_id is None
    assert door.result.title.text() == "ACCESS DENIED"
    assert "Access log unavailable - access denied" in door.result.reason.text()
    assert not door.result.name.isVisible()
    assert not any(e.decision is Decision.MATCH for e in ctx.store.events())  # no event claims a grant
    # the store is back: the withheld grant is logged as the denial it was
    door.flush_pending_log()
    qtbot.waitUntil(lambda: [e.decision for e in _door_events(ctx)] == [Decision.LOG_UNAVAILABLE], timeout=10000)
    assert "alice" in _door_events(ctx)[0].detail
    assert door.recorder.pending == 0


def test_a_grant_is_shown_only_once_its_event_is_committed(qtbot, ctx, kiosk):
    door = kiosk
    with qtbot.waitSignal(door.recorded, timeout=10000) as blocker:
        for _ in range(3):
            ctx.camera.frame.emit(_live_frame("alice"))
        assert door.result.title.text() == "Checking..."
    record = blocker.args[0]
    assert record.granted and record.outcome.event_id == record.event_id is not None
    assert door.result.title.text() == "ACCESS GRANTED"
    assert door.result.name.text() == "alice"
    [event] = _door_events(ctx)
    assert (event.id, event.decision, event.decided) == (record.event_id, Decision.MATCH, "alice")
    ctx.camera.frame.emit(_live_frame("alice"))  # while shown, frames do not count: still one event
    assert door.machine.state.outcome.event_id == record.event_id
