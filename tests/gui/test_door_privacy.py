"""The door page without face models (a hand-made gallery and frame results): verify mode gives
nothing away (no completion by default, the same denial for a name nobody has as for a wrong
face), the re-entry cooldown (a person let in is welcomed, not logged again; a stranger who
stays is logged once), and the empty-gallery hint."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from faceapp.door import DoorMode, DoorPhase
from faceapp.types import Decision

THRESHOLD = 0.15


class Clock:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


class Gallery:
    """distance_to as FaceService.gallery() answers it: None for a name nobody has."""

    distances = {"alice": 0.6, "bob": 0.05}
    people = {"alice", "bob"}

    def distance_to(self, name, _embedding):
        return self.distances.get(name)


class Service:
    analyzer = None

    def gallery(self):
        return Gallery()


class Engine:
    threshold = THRESHOLD

    def __init__(self) -> None:
        self.spec = None  # no model: the recognize rule is the cap and the margin


@pytest.fixture
def door_ctx(qapp, sqlite_url, tmp_path):
    from faceapp.config import Settings
    from faceapp.gui.context import AppContext
    from faceapp.storage import open_store

    store = open_store(sqlite_url)
    # no face models here, so no anti-spoofing network either (on by default where torch is installed)
    settings = Settings(device="cpu", db_url=sqlite_url, camera=str(tmp_path / "none.avi"), door_frames=3,
                        door_reset_s=4.0, door_cooldown_s=30.0, door_attempt_window_s=30.0, antispoof=False)
    ctx = AppContext(settings, store=store, settings_file=tmp_path / "settings.toml")
    ctx.engine, ctx.service = Engine(), Service()  # ready: the door builds its machine
    yield ctx
    ctx.service = None
    assert ctx.shutdown()
    store.close()


def _frame(name: str | None, distance: float):
    """A LiveFrame with one good face whose nearest candidate is ``name`` at ``distance``."""
    from PySide6.QtGui import QImage

    from faceapp.gui.context import LiveFrame
    from faceapp.pipeline import FaceObservation, FaceResult, FrameResult
    from faceapp.types import AlignedFace, BBox, Candidate, Detection, Landmarks, QualityReport

    det = Detection(BBox(200, 100, 400, 340), 0.99, Landmarks(np.full((5, 2), 300.0)))
    aligned = AlignedFace(np.zeros((150, 150, 3), np.uint8), det, np.eye(2, 3))
    obs = FaceObservation(aligned, QualityReport(200.0, 120.0, 80.0, 0.99), np.ones(128, np.float32))
    face = FaceResult(obs, (Candidate(name, distance),) if name else (), THRESHOLD)
    image = QImage(640, 480, QImage.Format.Format_RGB888)
    image.fill(0)
    return LiveFrame(FrameResult(0, np.zeros((480, 640, 3), np.uint8), (face,), {}, (det,)), image)


def _page(qtbot, ctx, mode, clock=None):
    from faceapp.gui.pages.door import DoorPage

    page = DoorPage(ctx, mode=mode)
    qtbot.addWidget(page)
    page.show()
    page.activate()
    if clock is not None:
        page.machine.clock = clock
        page.cooldown.clock = clock
    return page


def _apply(ctx, **changes):
    """New settings as the settings page applies them (the models' part left out: there are none)."""
    ctx.settings = ctx.settings.replace(**changes)
    ctx.settings_changed.emit(ctx.settings)


def _events(ctx):
    return sorted((e for e in ctx.store.events() if e.kind == "door"), key=lambda e: e.id)


def _decide(qtbot, page, frame):
    with qtbot.waitSignal(page.recorded, timeout=10000) as blocker:
        for _ in range(3):
            page.ctx.camera.frame.emit(frame)
    return blocker.args[0]


def test_no_name_completion_at_the_door_unless_the_setting_turns_it_on(qtbot, door_ctx):
    page = _page(qtbot, door_ctx, DoorMode.VERIFY)
    assert page.name_edit.completer() is None
    _apply(door_ctx, door_name_completion=True)
    assert page.name_edit.completer() is page.completer
    _apply(door_ctx, door_name_completion=False)
    assert page.name_edit.completer() is None


def test_a_name_nobody_has_is_denied_exactly_like_a_wrong_face(qtbot, door_ctx):
    page = _page(qtbot, door_ctx, DoorMode.VERIFY)
    seen = {}
    for typed in ("Nobody Here", "alice"):  # nobody has the first name; alice is there, the face is not hers
        page.cancel()
        qtbot.keyClicks(page.name_edit, typed)
        qtbot.keyClick(page.name_edit, Qt.Key.Key_Return)
        assert page.name_edit.text() == typed  # not corrected, not refused
        assert page.machine.state.phase is DoorPhase.WATCHING
        assert page.prompt.text() != "" and "enrolled" not in page.prompt.text()
        record = _decide(qtbot, page, _frame(None, 1.0))
        seen[typed] = (record.outcome.decision, page.result.title.text(),
                       page.result.reason.text().replace(typed, "NAME"), record.event.detail)
    assert seen["Nobody Here"] == seen["alice"]
    assert seen["alice"][:3] == (Decision.NO_MATCH, "ACCESS DENIED", "Not recognized as NAME")
    unknown, wrong = _events(door_ctx)
    assert (unknown.claimed, unknown.distance) == ("Nobody Here", None)  # the event keeps the truth
    assert (wrong.claimed, wrong.distance) == ("alice", pytest.approx(0.6))


def test_a_person_let_in_is_welcomed_but_not_logged_again_within_the_cooldown(qtbot, door_ctx):
    clock = Clock()
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE, clock)
    record = _decide(qtbot, page, _frame("bob", 0.05))
    assert record.granted and page.result.title.text() == "ACCESS GRANTED"
    clock.t += 4.5  # the screen resets; bob is still there
    page._tick()
    assert page.machine.state.phase is DoorPhase.WAITING
    decided = []
    page.decided.connect(decided.append)
    with qtbot.waitSignal(page.repeated, timeout=3000) as blocker:
        for _ in range(3):
            door_ctx.camera.frame.emit(_frame("bob", 0.05))
    verdict = blocker.args[0]
    assert verdict.repeat and verdict.repeat_of_s == pytest.approx(4.5)
    assert page.result.title.text() == "WELCOME" and page.result.reason.text() == "You were let in 4 s ago"
    assert page.result.name.text() == "bob"
    assert decided == []  # nothing to unlock: no decided signal, no event
    assert [e.decided for e in _events(door_ctx)] == ["bob"]
    clock.t += 30  # past the cooldown of the first grant: let in again, logged
    page._tick()
    assert _decide(qtbot, page, _frame("bob", 0.05)).granted
    assert [e.decided for e in _events(door_ctx)] == ["bob", "bob"]


def test_a_stranger_who_stays_is_logged_once_per_window(qtbot, door_ctx):
    clock = Clock()
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE, clock)
    assert _decide(qtbot, page, _frame("bob", 0.7)).outcome.decision is Decision.NOT_RECOGNIZED
    for _ in range(3):  # every 4.5 s a new attempt, for 13.5 s
        clock.t += 4.5
        page._tick()
        with qtbot.waitSignal(page.repeated, timeout=3000):
            for _ in range(3):
                door_ctx.camera.frame.emit(_frame("bob", 0.7))
        assert page.result.title.text() == "ACCESS DENIED"
        assert page.result.reason.text() == "Not recognized"  # no "not recorded" note: it is counted
    assert len(_events(door_ctx)) == 1
    clock.t += 30
    record = _decide(qtbot, page, _frame("bob", 0.7))  # the next one logged (before a tick) carries the count
    assert "3 more unrecognized face(s)" in record.event.detail
    assert len(_events(door_ctx)) == 2
    page._tick()
    assert _events_of(door_ctx, "door_quiet_denials") == []  # reported once, by the denial


def test_an_empty_gallery_says_enroll_first_on_live_and_door(qtbot, door_ctx):
    from faceapp.gui.pages.live import LivePage

    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE)
    live = LivePage(door_ctx)
    qtbot.addWidget(live)
    live.show()
    for hint in (page.empty_hint, live.empty_hint):
        assert hint.isVisible() and hint.text().startswith("Nobody is enrolled yet:")
    with qtbot.waitSignal(live.enroll_requested, timeout=1000):
        live.empty_hint.linkActivated.emit("enroll")


def test_the_door_judges_with_the_running_models_calibration_after_a_model_change(qtbot, door_ctx):
    # a model picked and saved on the settings page runs only after a restart: until then the
    # door's 1:K rule must stay on the curve of the model that makes the distances (the engine's)
    from faceapp.embed.weights import load_spec
    from faceapp.match.open_set import OpenSetRule

    engine_spec = load_spec("dlib-resnet-v1")
    door_ctx.engine.spec = engine_spec
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE)
    _apply(door_ctx, model="sface-v1")  # saved, not loaded: the engine is still dlib-resnet-v1
    expected = OpenSetRule.from_settings(door_ctx.settings, engine_spec, cap=THRESHOLD)
    assert page.machine.recognize_rule.threshold(1000) == pytest.approx(expected.threshold(1000))
    assert page.machine.recognize_rule.threshold(1000) < THRESHOLD  # not the cap: dlib's own t_1000


def test_an_attempt_cancelled_after_agreeing_frames_is_logged(qtbot, door_ctx):
    # Esc before the decision: an attacker tuning a photo or a mask leaves a trace in the log
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE)
    for _ in range(2):
        door_ctx.camera.frame.emit(_frame("bob", 0.05))
    assert page.machine.state.streak == 2
    page.cancel()
    qtbot.waitUntil(lambda: any(e.kind == "door_abandoned" for e in door_ctx.store.events()), timeout=5000)
    event = next(e for e in door_ctx.store.events() if e.kind == "door_abandoned")
    assert "recognize attempt cancelled" in event.detail and "2 agreeing frame(s)" in event.detail
    page.cancel()  # nothing running: nothing more logged
    assert [e.kind for e in door_ctx.store.events()].count("door_abandoned") == 1


def _empty_frame():
    """A LiveFrame with nobody in it (the photo was lowered, the visitor left)."""
    from PySide6.QtGui import QImage

    from faceapp.gui.context import LiveFrame
    from faceapp.pipeline import FrameResult

    image = QImage(640, 480, QImage.Format.Format_RGB888)
    image.fill(0)
    return LiveFrame(FrameResult(0, np.zeros((480, 640, 3), np.uint8), (), {}, ()), image)


def test_an_attempt_whose_face_left_before_the_decision_is_logged_once(qtbot, door_ctx):
    # review 2 item 4: agreeing frames, then the photo is lowered before the decision: the
    # attempt drops after a few empty frames, and leaves one door_abandoned event (nobody let in)
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE)
    for _ in range(2):
        door_ctx.camera.frame.emit(_frame("bob", 0.05))
    for _ in range(5):
        door_ctx.camera.frame.emit(_empty_frame())
    assert page.machine.state.phase is DoorPhase.WAITING
    qtbot.waitUntil(lambda: any(e.kind == "door_abandoned" for e in door_ctx.store.events()), timeout=5000)
    event = next(e for e in door_ctx.store.events() if e.kind == "door_abandoned")
    assert "recognize attempt abandoned (face gone) after 2 agreeing frame(s) of 3 (match bob)" in event.detail
    assert event.decided is None and not [e for e in door_ctx.store.events() if e.kind == "door"]
    page.cancel()  # nothing running: nothing more
    # a passer-by read once is dropped quietly
    door_ctx.camera.frame.emit(_frame(None, 0.0))
    for _ in range(5):
        door_ctx.camera.frame.emit(_empty_frame())
    qtbot.wait(200)
    assert [e.kind for e in door_ctx.store.events()].count("door_abandoned") == 1


def _events_of(ctx, kind):
    return sorted((e for e in ctx.store.events() if e.kind == kind), key=lambda e: e.id)


def test_a_grant_whose_lock_was_unreachable_starts_no_cooldown(qtbot, door_ctx, tmp_path):
    # LOCK UNREACHABLE: bob's next attempt tries the lock again; no WELCOME at a shut door
    import sys

    script = tmp_path / "lock.py"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(2)\n")
    script.chmod(0o755)
    clock = Clock()
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE, clock)
    _apply(door_ctx, door_command=str(script))
    page.machine.clock = clock
    with qtbot.waitSignal(page.dispatched, timeout=10000) as blocker:
        for _ in range(3):
            door_ctx.camera.frame.emit(_frame("bob", 0.05))
    assert blocker.args[0].lock_unreachable and page.result.title.text() == "LOCK UNREACHABLE"
    clock.t += 4.5
    page._tick()
    repeated = []
    page.repeated.connect(repeated.append)
    with qtbot.waitSignal(page.dispatched, timeout=10000) as blocker:  # logged and tried again
        for _ in range(3):
            door_ctx.camera.frame.emit(_frame("bob", 0.05))
    assert repeated == [] and blocker.args[0].record.granted
    assert [e.decided for e in _events(door_ctx)] == ["bob", "bob"]
    page.outputs.close()


def test_quiet_denials_are_logged_when_the_window_closes_and_when_the_door_stops(qtbot, door_ctx):
    clock = Clock()
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE, clock)
    assert _decide(qtbot, page, _frame("bob", 0.7)).outcome.decision is Decision.NOT_RECOGNIZED

    def quiet_attempts(n):
        for _ in range(n):
            clock.t += 4.5
            page._tick()
            with qtbot.waitSignal(page.repeated, timeout=3000):
                for _ in range(3):
                    door_ctx.camera.frame.emit(_frame("bob", 0.7))

    quiet_attempts(3)
    page._tick()
    assert _events_of(door_ctx, "door_quiet_denials") == []  # the window is still open
    clock.t += 30  # the stranger left: no later denial will say how many were held back
    page._tick()
    qtbot.waitUntil(lambda: len(_events_of(door_ctx, "door_quiet_denials")) == 1, timeout=5000)
    assert _events_of(door_ctx, "door_quiet_denials")[0].detail.startswith("3 more unrecognized face(s)")
    _decide(qtbot, page, _frame("bob", 0.7))  # logged: a new window
    quiet_attempts(2)
    page.deactivate()  # the door screen is left (or the app quits): reported now
    qtbot.waitUntil(lambda: len(_events_of(door_ctx, "door_quiet_denials")) == 2, timeout=5000)
    assert _events_of(door_ctx, "door_quiet_denials")[1].detail.startswith("2 more")
    assert len(_events(door_ctx)) == 2  # 2 logged + 3 + 2 reported: all 7 attempts accounted for


def test_weaker_settings_are_logged_once_when_the_door_starts(qtbot, door_ctx):
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE)  # the fixture turns anti-spoofing off
    qtbot.waitUntil(lambda: len(_events_of(door_ctx, "door_settings")) == 1, timeout=5000)
    assert "anti-spoofing is off" in _events_of(door_ctx, "door_settings")[0].detail
    _apply(door_ctx, door_cooldown_s=10.0)  # nothing security-relevant changed: not logged again
    _apply(door_ctx, door_frames=1)
    qtbot.waitUntil(lambda: len(_events_of(door_ctx, "door_settings")) == 2, timeout=5000)
    assert "door_frames = 1" in _events_of(door_ctx, "door_settings")[1].detail
    assert page.machine is not None  # weaker, not refused


def test_recognize_mode_on_a_model_without_a_calibration_curve_is_refused(qtbot, door_ctx):
    from faceapp.embed.weights import load_spec

    door_ctx.engine.spec = load_spec("compact-cnn-v1")  # no curve: the 1:1 threshold for everyone
    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE)
    assert page.machine is None
    assert page.prompt.text().startswith("Out of order: recognize mode refused")
    assert "calibration curve" in page.prompt.text() and "verify mode" in page.prompt.text()
    page.set_mode(DoorMode.VERIFY)  # one claim at a time: allowed
    assert page.machine is not None and page.machine.mode is DoorMode.VERIFY
    page.set_mode(DoorMode.RECOGNIZE)
    assert page.machine is None and page.prompt.text().startswith("Out of order")


def test_the_screen_shows_no_identity_before_the_door_has_decided(qtbot, door_ctx):
    # an attacker tuning a photo must not see when it matches (a green box, a tick) before the
    # anti-spoofing verdict: the box stays neutral and no tick appears until the decision
    from faceapp.gui.widgets import GOOD

    class Pending:  # an anti-spoofing attempt that has not decided yet
        scores = ()

        class verdict:  # noqa: N801
            value = "pending"

        def feed(self, frame, bbox):
            pass

        def detail(self):
            return ""

    page = _page(qtbot, door_ctx, DoorMode.RECOGNIZE)
    page.machine.antispoof = Pending
    drawn = []
    real = page.view.set_frame
    page.view.set_frame = lambda image, overlays=(): (drawn.append(list(overlays)), real(image, overlays))
    for _ in range(4):
        door_ctx.camera.frame.emit(_frame("bob", 0.05))
    assert page.machine.state.confirmed  # the identity is settled, the anti-spoofing verdict is not
    assert drawn and all(o.color != GOOD for frame in drawn for o in frame)
    assert "\u2713" not in page.progress.text()
