"""Door: the kiosk screen people walk up to. Keyboard only, legible from two metres.

The decision logic is :class:`faceapp.door.DoorMachine` (Qt-free); this page feeds it the
camera's frame results and draws its state in large type. Each decision is recorded by a
:class:`faceapp.door_log.DoorRecorder` in a worker thread (the frame loop never waits for the
database): the screen says "Checking..." until the event is committed, then ACCESS GRANTED, or
ACCESS DENIED ("Access log unavailable - access denied" when a grant could not be logged).

Repeats go through :class:`faceapp.door_cooldown.DoorCooldown` first: a person let in less than
``door_cooldown_s`` ago is shown WELCOME (no event, no output, ``repeated`` instead of
``decided``), and an unrecognized face that stays is logged once per ``door_attempt_window_s``.

On a database server the door outlives its server (:mod:`faceapp.store.offline`): while the
server does not answer, a banner says so and the door decides from its local copy of the
gallery; each decision is committed to the local outbox before the screen shows it (a grant
only then), and the outbox is delivered, once, when the server answers again. Started without
a copy and without the server, the screen says it is out of order.

Verify mode gives nothing away: no name completion unless ``door_name_completion`` is on, the
name field keeps what was typed, and a name nobody has is denied exactly like a wrong face (the
event records the claim; its distance is empty when nobody has that name).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

import shiboken6
from PySide6.QtCore import QCoreApplication, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from faceapp.door import (
    DoorAbandoned,
    DoorHint,
    DoorMachine,
    DoorMode,
    DoorOutcome,
    DoorPhase,
    DoorState,
    liveness_factory,
)
from faceapp.door_checks import recognize_refusal, report_weaker_settings, uncalibrated
from faceapp.door_cooldown import QUIET_EVENT, CooldownVerdict, DoorCooldown
from faceapp.door_log import DoorRecord, DoorRecorder, withheld
from faceapp.gui.context import AppContext, LiveFrame, error_text
from faceapp.gui.messages import (
    EMPTY_GALLERY_HTML,
    HINT_TEXT,
    LIVENESS_HINT_TEXT,
    REPEAT_TITLE,
    outcome_reason,
    record_reason,
    repeat_reason,
)
from faceapp.gui.pages.base import Page
from faceapp.gui.pages.common import face_overlay
from faceapp.gui.widgets import NEUTRAL, WARN, VideoView, jpeg_pixmap
from faceapp.outputs import Dispatch, DoorOutputs

log = logging.getLogger(__name__)

GRANTED_BG = "#0b7a32"
DENIED_BG = "#b00020"
CHECKING_BG = "#2b3035"
CHECKING_TEXT = "Checking..."
LOCK_BG = "#8a4b00"  # a grant whose lock output failed
LOCK_UNREACHABLE_TITLE = "LOCK UNREACHABLE"
LOCK_UNREACHABLE_TEXT = "You were recognised, but the door could not be opened. Please ask for help."
RETRY_MS = 5000
FLUSH_MS = 2000  # how often decisions that could not be logged are tried again
OFFLINE_TEXT = ("Database server unreachable: this door decides from its own copy of the enrolled people{taken}. "
                "Decisions are kept here and sent to the server when it answers.")
QUEUED_TEXT = "The server is unreachable: this decision is kept at the door and logged when it answers."

MODE_TITLES = {
    DoorMode.VERIFY: "Verify: say who you are, then look at the camera",
    DoorMode.RECOGNIZE: "Face recognition: just look at the camera",
}


def _font(widget: QWidget, px: int, bold: bool = False) -> None:
    f = QFont(widget.font())
    f.setPixelSize(max(10, int(px)))
    f.setBold(bold)
    widget.setFont(f)


class ResultPanel(QWidget):
    """The full-page ACCESS GRANTED / ACCESS DENIED screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAutoFillBackground(True)
        self.title = QLabel("")
        self.photo = QLabel("")
        self.name = QLabel("")
        self.reason = QLabel("")
        self.reset = QLabel("")
        for w in (self.title, self.photo, self.name, self.reason, self.reset):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            w.setStyleSheet("color: white; background: transparent;")
        self.name.setWordWrap(True)
        self.reason.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.photo)
        layout.addWidget(self.name)
        layout.addWidget(self.reason)
        layout.addStretch(1)
        layout.addWidget(self.reset)
        self._pix = None

    def show_outcome(self, outcome: DoorOutcome, photo_jpeg: bytes | None, reason: str, *, title: str | None = None) -> None:
        granted = outcome.granted
        self._set_background(GRANTED_BG if granted else DENIED_BG)
        self.title.setText(title or ("ACCESS GRANTED" if granted else "ACCESS DENIED"))
        self.name.setText(outcome.name or "")
        self.name.setVisible(bool(outcome.name))
        self.reason.setText(reason)
        self._pix = jpeg_pixmap(photo_jpeg) if photo_jpeg else None
        self.photo.setVisible(self._pix is not None)
        self._layout_fonts()

    def show_checking(self) -> None:
        """Neutral: a decision was made and its event is being committed."""
        self._set_background(CHECKING_BG)
        self.title.setText(CHECKING_TEXT)
        self.name.setText("")
        self.name.setVisible(False)
        self.reason.setText("")
        self.reset.setText("")
        self._pix = None
        self.photo.setVisible(False)
        self._layout_fonts()

    def show_lock_unreachable(self) -> None:
        """A grant whose lock output failed (faceapp.outputs): the visitor must not wait at a shut door."""
        self._set_background(LOCK_BG)
        self.title.setText(LOCK_UNREACHABLE_TITLE)
        self.reason.setText(LOCK_UNREACHABLE_TEXT)
        self._layout_fonts()

    def _set_background(self, color: str) -> None:
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.Window, QColor(color))
        self.setPalette(pal)

    def set_remaining(self, seconds: float | None) -> None:
        self.reset.setText("" if seconds is None else f"Next visitor in {seconds:.0f} s")

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._layout_fonts()

    def _layout_fonts(self) -> None:
        h = max(self.height(), 300)
        _font(self.title, h / 9, bold=True)
        _font(self.name, h / 14, bold=True)
        _font(self.reason, h / 20)
        _font(self.reset, h / 40)
        if self._pix is not None and not self._pix.isNull():
            side = int(h / 3.2)
            self.photo.setPixmap(
                self._pix.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            )


class DoorPage(Page):
    title = "Door"
    needs_camera = True

    decided = Signal(object)  # the final DoorOutcome, once recorded (a grant only with its event_id)
    recorded = Signal(object)  # the DoorRecord behind it (event, error, attempts)
    dispatched = Signal(object)  # what the door outputs made of it (faceapp.outputs.Dispatch)
    repeated = Signal(object)  # a CooldownVerdict shown but not logged (a repeat grant, a stranger who stays)
    enroll_requested = Signal()  # the empty-gallery hint's link

    def __init__(self, ctx: AppContext, parent=None, *, mode: DoorMode | str = DoorMode.RECOGNIZE) -> None:
        super().__init__(ctx, parent)
        self.machine: DoorMachine | None = None
        self._mode = DoorMode(mode)
        self._active = False
        self._shown: DoorOutcome | None = None
        self.recorder: DoorRecorder | None = None  # commits the decisions (worker threads)
        self._checking: object | None = None  # the decision being recorded now (a token)
        self._flushing = False
        self.outputs: DoorOutputs | None = None  # the lock / command / webhook outputs (see _ensure_outputs)
        self._outputs_for: tuple | None = None
        self._typed = ""  # verify: the claim as the visitor typed it (shown back; never corrected)
        self.cooldown = DoorCooldown.from_settings(ctx.settings)
        self._weak_reported: tuple | None = None  # the weaker settings last logged (door_settings)
        self._refused: str | None = None  # why the door does not run (recognize mode, no calibration curve)
        self._parked: DoorMachine | None = None  # the machine kept while refused (verify mode may use it)
        # runs F2's mode switch: at once here; the kiosk window puts it behind the admin PIN (the
        # mode is the door's setting, not the visitor's: verify mode has no recognize margin)
        self.mode_guard = lambda purpose, action: action()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        # -- the watching screen
        self.header = QLabel("")
        self.header.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.header.setWordWrap(True)
        self.keys = QLabel("F2 switch mode  \u00b7  Esc cancel")
        self.keys.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.keys.setStyleSheet("color: #9aa;")
        self.view = VideoView(placeholder="Loading face models...", background="#14171a")
        self.empty_hint = QLabel(EMPTY_GALLERY_HTML)
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setStyleSheet("#emptyHint { background: #ffb74d; color: #1a1a1a; padding: 6px 10px; }"
                                      " #emptyHint a { color: #0b3d91; }")
        self.empty_hint.setTextFormat(Qt.TextFormat.RichText)
        self.empty_hint.linkActivated.connect(lambda _link: self.enroll_requested.emit())
        self.empty_hint.setVisible(False)
        self.offline_banner = QLabel("")  # the database server does not answer (ctx.offline_changed)
        self.offline_banner.setObjectName("offlineBanner")
        self.offline_banner.setStyleSheet("#offlineBanner { background: #8a4b00; color: #ffffff; padding: 6px 10px; }")
        self.offline_banner.setWordWrap(True)
        self.offline_banner.setVisible(False)
        self.prompt = QLabel("")
        self.prompt.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.prompt.setWordWrap(True)
        self.progress = QLabel("")
        self.progress.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.progress.setStyleSheet("color: #bbb;")
        # the liveness challenge: how far the blink / turn has got, and the seconds left
        self.live_bar = QProgressBar()
        self.live_bar.setRange(0, 100)
        self.live_bar.setTextVisible(True)
        self.live_bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.live_bar.setStyleSheet(
            "QProgressBar { border: 2px solid #555; border-radius: 6px; background: #22272b; color: #f2f2f2; }"
            "QProgressBar::chunk { background: #2e86de; border-radius: 4px; }"
        )
        self.live_bar.setVisible(False)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Your name")
        self.name_edit.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name_edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.name_edit.returnPressed.connect(self.submit_claim)
        self._names = QStringListModel(self)
        self.completer = QCompleter(self._names, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self._apply_completion()

        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.keys)
        side = QVBoxLayout()  # beside the camera: what to do now, the name, the progress
        side.addStretch(2)
        side.addWidget(self.prompt)
        side.addSpacing(16)
        side.addWidget(self.name_edit)
        side.addSpacing(16)
        side.addWidget(self.progress)
        side.addSpacing(12)
        side.addWidget(self.live_bar)
        side.addStretch(3)
        body = QHBoxLayout()
        body.addWidget(self.view, 3)
        body.addSpacing(24)
        body.addLayout(side, 2)
        watch = QWidget()
        watch.setObjectName("doorWatch")
        watch.setStyleSheet("#doorWatch { background: #14171a; } QLabel { color: #f2f2f2; }")
        wl = QVBoxLayout(watch)
        wl.setContentsMargins(24, 16, 24, 24)
        wl.addLayout(top)
        wl.addWidget(self.offline_banner)
        wl.addWidget(self.empty_hint)
        wl.addLayout(body, 1)
        self.watch = watch
        self.result = ResultPanel()
        self.stack = QStackedLayout(self)
        self.stack.addWidget(watch)
        self.stack.addWidget(self.result)

        QShortcut(QKeySequence(Qt.Key.Key_F2), self, self.toggle_mode)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._tick)
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.setInterval(RETRY_MS)
        self._retry.timeout.connect(self._retry_camera)
        self._flush = QTimer(self)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self.flush_pending_log)

        ctx.camera.frame.connect(self._frame)
        ctx.camera.failed.connect(self._camera_failed)
        ctx.camera.ended.connect(self._camera_ended)
        ctx.camera.opened.connect(lambda _info: self.view.set_message(""))
        ctx.engine_ready.connect(self._engine_ready)
        ctx.engine_failed.connect(lambda m: self._set_prompt(f"Out of order: {m}", error=True))
        ctx.store_failed.connect(self._store_failed)
        ctx.offline_changed.connect(self._offline_changed)
        ctx.store_ready.connect(self.refresh_names)
        ctx.people_changed.connect(self.refresh_names)
        ctx.people_changed.connect(lambda *_: self._enforce_calibration())
        ctx.settings_changed.connect(lambda s: self._build_machine())
        ctx.settings_changed.connect(lambda s: self._settings_changed(s))
        self._apply_mode()
        app = QCoreApplication.instance()
        if app is not None:  # the app quits: the quiet denials still held back are logged
            app.aboutToQuit.connect(
                lambda: shiboken6.isValid(self) and self._report_quiet(final=True, now=True))
        # the lock first: its relock bytes go out as soon as the page starts the door, not once the
        # models are ready (they may never be: a kiosk restarted after a crash while open locks)
        self._ensure_outputs()
        if ctx.ready:
            self._engine_ready()
        if ctx.store_error:
            self._store_failed(ctx.store_error)

    # -- set-up -----------------------------------------------------------------------------
    def _engine_ready(self) -> None:
        recorder = self._ensure_recorder()
        if recorder is not None and recorder.offline is not None:
            self._flush.start()  # an outbox left by an earlier run is delivered when the server answers
        self._offline_changed(self.ctx.server_unreachable)  # the banner, and the enrolled names
        self._ensure_outputs()  # with the store now open (the outputs log their events to it)
        self._build_machine()
        if self.machine is None:
            return  # refused (out of order; the prompt says why)
        self.view.set_message("Starting camera..." if self.ctx.camera.state != "running" else "")
        self._render(self.machine.state)

    def _build_machine(self) -> None:
        if not self.ctx.ready:
            return
        service = self.ctx.service
        # the recognize rule on the calibration curve of the RUNNING model (the engine's spec): a
        # model picked on the settings page runs only after a restart, and its curve would judge
        # this model's distances (sface-v1's cap of 0.15 for dlib's t_1000 of 0.075)
        self.machine = DoorMachine.from_settings(
            self.ctx.settings,
            self._mode,
            threshold=self.ctx.engine.threshold,
            spec=self.ctx.engine.spec,
            distance_to=lambda name, emb: service.gallery().distance_to(name, emb),
            liveness=liveness_factory(self.ctx.settings, analyzer=self.ctx.analyzer),
        )
        self._checking = None  # a decision still being recorded is not shown on the new machine
        self._shown = None
        self._parked = None
        self._refused = None
        self.stack.setCurrentWidget(self.watch)
        if self._active:  # (a door built while another page is shown reports when it starts watching)
            self._report_settings()
        self._enforce_calibration()

    def _running_spec(self):
        """The running model's spec (the engine's; else the settings' model, as the machine does)."""
        spec = getattr(self.ctx.engine, "spec", None)
        if spec is None:
            from faceapp.embed.weights import load_spec

            try:
                spec = load_spec(self.ctx.settings.model)
            except Exception:
                spec = None
        return spec

    def _report_settings(self) -> None:
        """Settings weaker than their defaults: one warning line and one ``door_settings`` event
        (faceapp.door_checks), when the door starts and whenever that list changes."""
        from faceapp.door_checks import weaker_settings

        s, spec, threshold = self.ctx.settings, self._running_spec(), self.ctx.engine.threshold
        key = tuple(w.line() for w in weaker_settings(s, spec=spec, threshold=threshold))
        if key == self._weak_reported:
            return
        self._weak_reported = key
        store = self.ctx.store
        report_weaker_settings(
            s, spec=spec, threshold=threshold, door="the door kiosk",
            # looked up in the worker: a store whose server is down connects on first use
            log_event=(lambda kind, **kw: store.log_event(kind, **kw)) if store is not None else None,
            task=lambda fn: self.ctx.task(fn, name="door-settings"))

    def _enforce_calibration(self, people: int | None = None) -> bool:
        """Fail secure: recognize mode on a model without a calibration curve, with more than one
        person enrolled (``people``: as a frame counted them; default: the gallery's), does not
        run: the machine is parked and the screen says out of order, why and what to do. Verify
        mode, or a gallery of one, runs it again. True when the door runs."""
        machine = self.machine or self._parked
        if machine is None:
            return False
        why = None
        if self._mode is DoorMode.RECOGNIZE and uncalibrated(machine.recognize_rule):
            if people is None:
                try:
                    people = len(self.ctx.service.gallery().people)
                except Exception as exc:  # not counted: refused (an unknown number is not one)
                    log.warning("enrolled people not counted: %s", error_text(exc))
            spec = self._running_spec()
            why = recognize_refusal(machine.recognize_rule, people, model=getattr(spec, "model_id", ""))
        if why is not None:
            if why != self._refused:
                log.error("door out of order: %s", why)
            self._refused = why
            if self.machine is not None:
                self._log_abandoned(self.machine.cancel("door out of order").abandoned)
            self.machine, self._parked = None, machine
            self._checking = None
            self.stack.setCurrentWidget(self.watch)
            self.progress.setText("")
            self._set_prompt(f"Out of order: {why}", error=True)
            return False
        if self.machine is None:
            self.machine, self._parked, self._refused = machine, None, None
            self._log_abandoned(machine.set_mode(self._mode).abandoned)  # (parked: nothing runs)
            self._render(machine.state)
        return True

    def refresh_names(self) -> None:
        """The enrolled names (verify mode resolves the claim's case with them): the server's,
        or while it does not answer those of the door's local copy."""
        if self.ctx.store is None:
            return
        copy = self.ctx.offline.store if self.ctx.offline is not None else None
        try:  # (not the server while it does not answer: no connection attempt on the screen's thread)
            people = (copy if self.ctx.server_unreachable else self.ctx.store).list_people()
        except Exception as exc:
            if copy is None:
                log.warning("enrolled names not read: %s", error_text(exc))
                return
            try:
                people = copy.list_people()
            except Exception as exc2:
                log.warning("enrolled names not read from the door's copy either: %s", error_text(exc2))
                return
        self._names.setStringList([p.name for p in people])
        self.empty_hint.setVisible(not self._names.stringList())

    def _store_failed(self, message: str) -> None:
        """No database and (on a server) no local copy of the gallery: the door cannot decide."""
        self.view.set_message("Out of order", error=True)
        self._set_prompt(f"Out of order: {message}", error=True)

    def _offline_changed(self, offline: bool) -> None:
        taken = self.ctx.snapshot_taken_at
        when = f" (taken {taken.astimezone().strftime('%Y-%m-%d %H:%M')})" if offline and taken is not None else ""
        self.offline_banner.setText(OFFLINE_TEXT.format(taken=when) if offline else "")
        self.offline_banner.setVisible(bool(offline))
        if offline and self.recorder is not None and not self._flush.isActive():
            self._flush.start()
        self.refresh_names()

    def _settings_changed(self, settings) -> None:
        self.cooldown.cooldown_s = settings.door_cooldown_s  # who was let in is kept
        self.cooldown.attempt_window_s = settings.door_attempt_window_s
        self._apply_completion()

    def _apply_completion(self) -> None:
        """Name completion only when the setting asks for it (it shows visitors who is enrolled)."""
        on = bool(self.ctx.settings.door_name_completion)
        if on and self.name_edit.completer() is not self.completer:
            self.name_edit.setCompleter(self.completer)
        elif not on and self.name_edit.completer() is not None:
            self.name_edit.setCompleter(None)

    @property
    def mode(self) -> DoorMode:
        return self._mode

    def set_mode(self, mode: DoorMode | str) -> None:
        self._mode = DoorMode(mode)
        self._checking = None
        self._typed = ""
        if self.machine is not None:
            self._log_abandoned(self.machine.set_mode(self._mode).abandoned)
        self._apply_mode()
        self._enforce_calibration()  # recognize mode may be refused (no calibration curve), verify not

    def toggle_mode(self) -> None:
        """F2: switch verify / recognize, through ``mode_guard`` (the kiosk asks for the admin PIN)."""
        if self._checking is not None:
            return  # F2 waits until the decision on screen is recorded
        target = DoorMode.RECOGNIZE if self._mode is DoorMode.VERIFY else DoorMode.VERIFY

        def switch() -> None:
            if self._checking is None and self._mode is not target:
                self.set_mode(target)

        self.mode_guard(f"switch the door to {target.value} mode", switch)

    def _apply_mode(self) -> None:
        verify = self._mode is DoorMode.VERIFY
        self.header.setText(MODE_TITLES[self._mode])
        self.name_edit.setVisible(verify)
        self.name_edit.clear()
        self.stack.setCurrentWidget(self.watch)
        self._shown = None
        if verify:
            self.name_edit.setFocus()
        if self.machine is not None:
            self._render(self.machine.state)
        else:
            self._set_prompt("Starting...")

    # -- keyboard ---------------------------------------------------------------------------
    def submit_claim(self) -> None:
        """Enter in the name field: claim that identity (verify mode)."""
        if self.machine is None or self._mode is not DoorMode.VERIFY:
            return
        typed = self.name_edit.text().strip()
        if not typed:
            return
        # A name nobody has is claimed as typed: the attempt runs and is denied like a wrong
        # face, so the screen never says who is enrolled (nor corrects the spelling to a name).
        self._typed = typed
        self._render(self.machine.claim(self._resolve(typed) or typed))

    def _resolve(self, typed: str) -> str | None:
        names = self._names.stringList()
        if typed in names:
            return typed
        folded = [n for n in names if n.casefold() == typed.casefold()]
        return folded[0] if len(folded) == 1 else None

    def cancel(self) -> None:
        if self._checking is not None:
            return  # Esc waits until the decision on screen is recorded (at most the log budget)
        if self.machine is not None:
            self._render(self.machine.cancel("Esc"))  # an attempt with agreeing frames is logged
        self.name_edit.clear()
        self.stack.setCurrentWidget(self.watch)
        self._shown = None
        if self._mode is DoorMode.VERIFY:
            self.name_edit.setFocus()

    def _log_abandoned(self, abandoned: DoorAbandoned | None) -> None:
        """An attempt that had agreeing frames and ended without its decision (the machine's
        ``DoorState.abandoned``: the face left, e.g. a photo lowered before the anti-spoofing
        verdict; Esc; a mode switch; a new claim; a timeout the cooldown holds back) is logged
        once as ``door_abandoned`` (in the background): whoever tunes a photo or a mask by
        watching the screen and leaving before the denial still leaves a trace."""
        store = self.ctx.store
        if abandoned is None:
            return
        detail = abandoned.detail
        log.warning("door attempt without a decision: %s", detail)
        if store is None:
            return
        self.ctx.task(lambda: store.log_event("door_abandoned", detail=detail), name="door-abandoned",
                      on_error=lambda exc: log.error("abandoned door attempt not logged (%s): %s",
                                                     error_text(exc), detail))

    # -- page life --------------------------------------------------------------------------
    def activate(self) -> None:
        self._active = True
        self.ctx.door_watching = True
        self._timer.start()
        if self.machine is not None:
            self._report_settings()  # the door starts deciding: its weaker settings are logged (once per list)
        if self.ctx.ready and self.ctx.camera.state in ("failed", "ended"):
            QTimer.singleShot(0, self._retry_camera)  # it failed or ended while another page was shown
        self.refresh_names()
        if self._mode is DoorMode.VERIFY:
            self.name_edit.setFocus()
        else:
            self.setFocus()

    def deactivate(self) -> None:
        self._active = False
        self.ctx.door_watching = False
        self._timer.stop()
        self._retry.stop()
        self._checking = None  # still recorded and signalled, no longer shown
        if self.machine is not None:
            self._log_abandoned(self.machine.cancel("door page left").abandoned)
        self._report_quiet(final=True)  # no tick while another page is shown: report what is held back

    # -- frames -----------------------------------------------------------------------------
    def _frame(self, frame: LiveFrame) -> None:
        if not self._active or self.machine is None or self._checking is not None:
            return  # while a decision is being recorded, frames do not count
        people = getattr(frame.result, "gallery_size", None)
        if (people or 0) > 1 and self._mode is DoorMode.RECOGNIZE and uncalibrated(self.machine.recognize_rule):
            if not self._enforce_calibration(people):  # someone was enrolled meanwhile
                return
        if self.machine.needs_landmarks and frame.landmarks is None and frame.result.faces:
            # the worker had not started predicting landmarks yet (the setting just changed)
            state = self.machine.tick()
        else:
            state = self.machine.feed(frame.result, frame.landmarks)
        overlays = []
        show = frame.landmarks if self.ctx.settings.show_landmarks else None
        for i, face in enumerate(frame.result.faces):
            # nothing tells whether the face matched before the door has decided (the anti-
            # spoofing verdict, the liveness challenge): an attacker tuning a photo or a mask
            # must not see when it matches; only the quality shows
            color = NEUTRAL if face.observation.quality.ok else WARN
            lm = show[i] if show is not None and i < len(show) else None
            overlays.append(face_overlay(face.observation.detection, "", color, lm))
        self.view.set_frame(frame.image, overlays)
        self._render(state)

    def _tick(self) -> None:
        self._report_quiet()
        if self.machine is not None and self._checking is None:
            self._render(self.machine.tick())

    def _report_quiet(self, *, final: bool = False, now: bool = False) -> None:
        """Log (in the background; ``now``: here, the app is quitting) the count of quiet
        denials that no later denial will report: their window closed, the report is due, or
        the door stops (``final``). A write that fails gives the count back to the cooldown
        for the next report."""
        report = self.cooldown.quiet_report(final=final)
        if report is None:
            return
        store = self.ctx.store
        if store is None:
            self.cooldown.unreport(report)
            return

        def failed(exc: BaseException) -> None:
            log.error("quiet door denials not logged yet (%s): %s", error_text(exc), report.detail)
            self.cooldown.unreport(report)

        if now:
            try:  # the app is quitting: no worker would run it
                store.log_event(QUIET_EVENT, detail=report.detail)
            except Exception as exc:
                log.error("quiet door denials not logged (%s): %s", error_text(exc), report.detail)
            return
        self.ctx.task(lambda: store.log_event(QUIET_EVENT, detail=report.detail), name="door-quiet",
                      on_error=failed)

    def _render(self, state: DoorState) -> None:
        if state.decided_now and state.outcome is not None:
            self._decide(state.outcome, state.abandoned)
        elif state.abandoned is not None:  # ended without its decision (face gone, Esc, a new claim)
            self._log_abandoned(state.abandoned)
        if self._checking is not None:
            return  # "Checking..." stays until the event is committed (or given up)
        if state.phase in (DoorPhase.GRANTED, DoorPhase.DENIED) and state.outcome is not None:
            if self._shown is not state.outcome:  # not shown by _recorded (never a grant without its event)
                record = _unrecorded(state.outcome)
                self._show_result(record.outcome, None, self._reason(record))
                self._shown = state.outcome
            self.result.set_remaining(state.remaining_s)
            return
        if self._shown is not None:  # the reset: back to the camera
            self._shown = None
            self.stack.setCurrentWidget(self.watch)
            if self._mode is DoorMode.VERIFY:
                self.name_edit.clear()
                self.name_edit.setFocus()
        if self.ctx.camera.state == "failed":
            return  # the camera message stays
        hint = state.hint or DoorHint.LOOK_AT_CAMERA
        text = HINT_TEXT[hint]
        if state.phase is DoorPhase.WATCHING and self._mode is DoorMode.VERIFY and hint is DoorHint.HOLD_STILL:
            text = f"Hold still, {self._typed or state.claimed}..."
        live = state.liveness if state.phase is DoorPhase.WATCHING else None
        challenge = live is not None and not live.finished
        if challenge and hint in (DoorHint.HOLD_STILL, DoorHint.LIVENESS, DoorHint.LOOK_AT_CAMERA, DoorHint.NO_FACE):
            text = LIVENESS_HINT_TEXT[live.hint]  # the challenge: blink, turn left / right
        calm = (DoorHint.ENTER_NAME, DoorHint.LOOK_AT_CAMERA, DoorHint.HOLD_STILL, DoorHint.LIVENESS)
        self._set_prompt(text, error=hint not in calm and not challenge)
        if state.phase is DoorPhase.WATCHING:
            # agreeing frames, whatever they read (a match or not); no tick for a confirmed
            # identity while the other checks are pending: the screen gives nothing away early
            dots = "\u25cf" * min(state.streak, state.needed) + "\u25cb" * max(0, state.needed - state.streak)
            self.progress.setText(f"{dots}    {state.remaining_s or 0:.0f} s left")
        else:
            self.progress.setText("")
        self.live_bar.setVisible(live is not None)
        if live is not None:
            self.live_bar.setValue(int(round(100 * (1.0 if live.passed else live.progress))))
            goal = getattr(live, "goal_deg", None)  # a turn: show the angle reached against the one asked
            angle = f"turned {live.progress * goal:.0f}\u00b0 of {goal:.0f}\u00b0, " if goal is not None else ""
            self.live_bar.setFormat("Liveness check passed" if live.passed
                                    else f"Liveness check: {angle}{live.remaining_s:.0f} s left")

    # -- recording ----------------------------------------------------------------------------
    def _ensure_recorder(self) -> DoorRecorder | None:
        """The recorder for the current store (made, and warmed in the background, on first use)."""
        store = self.ctx.store
        if store is None:
            return None
        if self.recorder is None or self.recorder.store is not store:
            if self.recorder is not None:
                self.recorder.close()
            self.recorder = DoorRecorder(store, offline=self.ctx.offline)
            self.ctx.task(self.recorder.prepare, name="door-log",
                          on_error=lambda e: log.warning("door log not prepared: %s", error_text(e)))
        return self.recorder

    def _as_typed(self, outcome: DoorOutcome) -> DoorOutcome:
        """The outcome as the visitor sees it: a verify denial names the claim as it was typed."""
        if outcome.mode is DoorMode.VERIFY and not outcome.granted and self._typed:
            return dataclasses.replace(outcome, claimed=self._typed)
        return outcome

    def _reason(self, record: DoorRecord) -> str:
        record = dataclasses.replace(record, outcome=self._as_typed(record.outcome))
        if record.queued_uid is not None:  # committed to the door's outbox: logged when the server answers
            return f"{outcome_reason(record.outcome)}\n{QUEUED_TEXT}"
        return record_reason(record)

    def _decide(self, outcome: DoorOutcome, abandoned: DoorAbandoned | None = None) -> None:
        """A decision was made: a repeat is shown at once and not logged (the cooldown);
        anything else is recorded off the UI thread, "Checking..." until it returns.
        ``abandoned``: a timeout's reading, logged when the cooldown holds the timeout back."""
        verdict = self.cooldown.admit(outcome)
        if not verdict.log and not verdict.repeat:
            self._log_abandoned(abandoned)
        if not verdict.log:
            self._show_repeat(verdict)
            return
        outcome = verdict.outcome
        token = object()
        self._checking = token
        self._shown = None
        self.result.show_checking()
        self.stack.setCurrentWidget(self.result)
        machine, recorder = self.machine, self._ensure_recorder()
        if recorder is None:
            self._recorded(token, machine, (_unlogged(outcome, "no database is open"), None), verdict)
            return
        self.ctx.task(
            _record_decision, recorder, self.ctx.store, outcome, self._ensure_outputs(), name="door-log",
            on_result=lambda result: self._recorded(token, machine, result, verdict),
            on_error=lambda exc: self._recorded(token, machine, (_unlogged(outcome, error_text(exc)), None), verdict),
        )

    def _show_repeat(self, verdict: CooldownVerdict) -> None:
        """A repeat grant (WELCOME, the lock stays as it is) or a stranger who stays (denied):
        on screen at once, no event, no output."""
        outcome = verdict.outcome
        if verdict.repeat:
            self._show_result(outcome, None, repeat_reason(verdict.repeat_of_s), title=REPEAT_TITLE)
        else:
            self._show_result(outcome, None, outcome_reason(self._as_typed(outcome)))
        self.repeated.emit(verdict)

    def _recorded(self, token: object, machine: DoorMachine | None, result: tuple,
                  verdict: CooldownVerdict | None = None) -> None:
        record, photo = result[0], result[1]
        dispatch: Dispatch | None = result[2] if len(result) > 2 else None  # the door outputs' result
        if verdict is not None:
            self.cooldown.settle(verdict, record, dispatch)  # LOCK UNREACHABLE starts no cooldown
        if token is self._checking and machine is self.machine and machine is not None:
            self._checking = None
            state = machine.settle(record.outcome)
            if state.outcome is not None and state.phase in (DoorPhase.GRANTED, DoorPhase.DENIED):
                self._show_result(state.outcome, photo, self._reason(record))
                if dispatch is not None and dispatch.lock_unreachable:
                    self.result.show_lock_unreachable()
                self.result.set_remaining(state.remaining_s)
            else:
                self._render(state)
        if record.committed:
            self.ctx.events_changed.emit()
        if (self.recorder is not None and (self.recorder.pending or record.queued_uid is not None)
                and not self._flush.isActive()):
            self._flush.start()
        self.recorded.emit(record)
        if dispatch is not None:
            self.dispatched.emit(dispatch)
        self.decided.emit(record.outcome)

    def flush_pending_log(self) -> None:
        """Try again (in the background) to log the decisions that could not be logged, and
        deliver those queued in the door's outbox while the server did not answer."""
        recorder = self.recorder
        if recorder is None or not (recorder.pending or recorder.offline is not None):
            self._flush.stop()
            return
        if self._flushing:
            return
        self._flushing = True

        def done(result: tuple[int, int]) -> None:
            if not shiboken6.isValid(self._flush):  # the screen was destroyed while this ran
                return
            written, left = result
            self._flushing = False
            if written:
                self.ctx.events_changed.emit()
            if not left:
                self._flush.stop()

        def failed(exc: BaseException) -> None:
            self._flushing = False
            log.warning("pending door decisions not logged: %s", error_text(exc))

        self.ctx.task(_flush_log, recorder, name="door-log-flush", on_result=done, on_error=failed)

    # -- door outputs (faceapp.outputs: lock relay, command, webhook) ----------------------------
    def _ensure_outputs(self) -> DoorOutputs | None:
        """The outputs for the current settings and store (rebuilt when either changed; the old
        ones lock and drain in the background). None when no output is configured."""
        s, store = self.ctx.settings, self.ctx.store
        key = (s.door_id, s.door_command, s.door_command_on, s.door_command_timeout_s, s.door_webhook_url,
               s.door_webhook_secret, s.door_webhook_timeout_s, s.door_webhook_retries, s.door_serial,
               s.door_serial_baud, s.door_serial_unlock, s.door_serial_relock, s.door_unlock_s, id(store))
        if key == self._outputs_for:
            return self.outputs
        old, self.outputs, self._outputs_for = self.outputs, None, key
        if old is not None:
            self.ctx.task(old.close, name="door-outputs-close")
        try:
            # looked up when an output event is written (a server that does not answer yet must not
            # keep the lock outputs from starting)
            log_event = (lambda *a, **k: store.log_event(*a, **k)) if store is not None else None
            outputs = DoorOutputs.from_settings(s, log_event=log_event)
        except Exception as exc:  # a command that cannot be split: no outputs, and the log says why
            log.error("door outputs not started: %s", error_text(exc))
            return None
        if outputs.configured:
            self.outputs = outputs
            self.ctx.task(outputs.start, name="door-outputs")
            app = QCoreApplication.instance()
            if app is not None:
                app.aboutToQuit.connect(outputs.close)  # lock the door when the app ends
        return self.outputs

    def _show_result(self, outcome: DoorOutcome, photo: bytes | None, reason: str, *, title: str | None = None) -> None:
        self._shown = outcome
        self.result.show_outcome(outcome, photo, reason, title=title)
        self.stack.setCurrentWidget(self.result)

    def _set_prompt(self, text: str, *, error: bool = False) -> None:
        self.prompt.setText(text)
        self.prompt.setStyleSheet(f"color: {'#ffb74d' if error else '#f2f2f2'};")

    # -- camera trouble ---------------------------------------------------------------------
    def _camera_failed(self, message: str) -> None:
        self.view.set_message(f"Camera unavailable\n{message}", error=True)
        self._set_prompt("Out of order: the camera is not working. Retrying...", error=True)
        self.progress.setText("")
        if self._active:
            self._retry.start()

    def _camera_ended(self, message: str) -> None:
        self.view.set_message(f"{message}. Restarting...")
        if self._active:
            self._retry.start(1000)

    def _retry_camera(self) -> None:
        if self._active and self.ctx.ready and self.ctx.camera.state in ("failed", "ended"):
            self.view.set_message("Starting camera...")
            self.ctx.camera.retry()

    # -- legibility -------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        h = max(self.height(), 300)
        _font(self.header, h / 30, bold=True)
        _font(self.keys, h / 55)
        _font(self.prompt, h / 15, bold=True)
        _font(self.name_edit, h / 20)
        self.completer.popup().setFont(self.name_edit.font())
        _font(self.progress, h / 30)
        _font(self.live_bar, h / 36)
        self.live_bar.setFixedHeight(max(24, int(h / 18)))


def _record_decision(recorder: DoorRecorder, store, outcome: DoorOutcome,
                     outputs: DoorOutputs | None = None) -> tuple[DoorRecord, bytes | None, Dispatch | None]:
    """Worker thread: commit the decision, drive the door outputs with the RECORDED outcome (a
    grant only with its event id), and fetch the photo of a granted person."""
    record = recorder.record(outcome)
    dispatch = outputs.dispatch(record) if outputs is not None else None  # never raises
    photo = None
    if record.granted and record.outcome.name:
        if record.queued_uid is not None and recorder.offline is not None:
            store = recorder.offline.store  # the server does not answer: the photo of the door's copy
        try:
            templates = store.templates(person=record.outcome.name)
            photo = templates[-1].face_jpeg if templates else None
        except Exception:  # a removed person, a busy database: no photo
            photo = None
    return record, photo, dispatch


def _flush_log(recorder: DoorRecorder) -> tuple[int, int]:
    """Worker thread: write the recorder's pending events and deliver its outbox; returns
    (written, still waiting)."""
    written = recorder.flush_pending()
    left = recorder.pending
    if recorder.offline is not None:
        left += len(recorder.offline.queued())
    return written, left


def _unlogged(outcome: DoorOutcome, error: str) -> DoorRecord:
    """The record of a decision that could not even be handed to the recorder."""
    final = withheld(outcome, error) if outcome.granted else outcome
    return DoorRecord(final, outcome, None, datetime.now(UTC), error=error)


def _unrecorded(outcome: DoorOutcome) -> DoorRecord:
    """The record of an outcome on screen that did not come through the recorder: a grant
    without its event id is shown as withheld."""
    if outcome.event_id is not None:
        return DoorRecord(outcome, outcome, None, datetime.now(UTC))
    return _unlogged(outcome, "not recorded")
