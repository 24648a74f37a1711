"""The admin PIN in the GUI: the PIN dialog, and the admin events it reports.

:class:`PinDialog` asks for the admin PIN and checks it with a :class:`faceapp.admin.AdminGate`
(wrong PINs lock it for a growing time; the dialog says how long). It is window-modal and
non-blocking (``open()``), so the door behind it keeps deciding while an admin types; it closes
by itself after :data:`IDLE_MS` without a key. :class:`AdminEvents` writes the gate's reports
to the access log as ``admin`` events, off the UI thread, keeping those made before the
database was open until it is.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from faceapp.admin import ADMIN_EVENT_KIND, AdminGate, PinCheck
from faceapp.errors import FaceAppError

log = logging.getLogger(__name__)

IDLE_MS = 60_000  # the dialog gives up after a minute without a key (the kiosk is never left with it open)


class AdminEvents:
    """The gate's ``on_event``: every check becomes an ``admin`` event of the access log."""

    def __init__(self) -> None:
        self.ctx = None
        self.pending: list[str] = []
        self._writing = False  # a background write is running (it writes until nothing is pending)
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self._lock:
            self.pending.append(text)
        self.flush()

    def attach(self, ctx) -> None:
        """Log through ``ctx`` from now on (what came before is logged once the store is open)."""
        self.ctx = ctx
        ctx.store_ready.connect(self.flush)
        self.flush()

    def flush(self) -> None:
        """Write what is pending in the background: one writer at a time, which also takes what
        comes while it writes, so the log keeps the order in which the checks happened (two
        writes in flight could commit either way round) and a shutdown that waits for the
        background work finds everything written."""
        ctx = self.ctx
        if ctx is None or ctx.store is None:
            return
        with self._lock:
            if self._writing or not self.pending:
                return
            self._writing = True
        store = ctx.store

        def write() -> int:
            written = 0
            while True:
                with self._lock:
                    texts, self.pending = self.pending, []
                    if not texts:
                        self._writing = False
                        return written
                for text in texts:
                    store.log_event(ADMIN_EVENT_KIND, detail=text)
                written += len(texts)

        def failed(exc) -> None:
            with self._lock:
                self._writing = False  # what came meanwhile goes with the next check
            log.warning("admin events not logged: %s", exc)

        ctx.task(write, name="admin-log", on_result=lambda _n: ctx.events_changed.emit(), on_error=failed)


def check_text(check: PinCheck) -> str:
    """What the dialog says after a refused PIN."""
    if check.locked and not check.checked:
        return f"Too many wrong PINs: try again in {check.locked_s:.0f} s."
    if check.locked:
        return f"Wrong PIN. Too many wrong PINs: wait {check.locked_s:.0f} s."
    left = check.tries_left
    return f"Wrong PIN. {left} more {'try' if left == 1 else 'tries'} before a wait."


class PinDialog(QDialog):
    """Asks for the admin PIN for ``purpose`` (words: "leave the door screen"); ``accepted``
    only after the gate took the PIN."""

    def __init__(self, gate: AdminGate, purpose: str, parent: QWidget | None = None, *, event_purpose: str = "") -> None:
        super().__init__(parent)
        self.gate = gate
        self.event_purpose = event_purpose or purpose
        self.setWindowTitle("Admin PIN")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.prompt = QLabel(f"Enter the admin PIN to {purpose}.")
        self.prompt.setWordWrap(True)
        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setPlaceholderText("Admin PIN")
        self.field.setMaxLength(64)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020; font-weight: bold;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.try_pin)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt)
        layout.addWidget(self.field)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(IDLE_MS)
        self._idle.timeout.connect(self.reject)
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._show_lock)
        self.field.textEdited.connect(lambda _t: self._idle.start())
        self._idle.start()
        self._show_lock()

    def try_pin(self) -> None:
        """OK / Enter: check the typed PIN."""
        self._idle.start()
        try:
            check = self.gate.check(self.field.text(), purpose=self.event_purpose)
        except FaceAppError as exc:  # a damaged PIN file: nobody gets in until the admin fixes it
            self.message.setText(f"The admin PIN cannot be checked: {exc}")
            self.field.clear()
            return
        self.field.clear()
        if check.ok:
            self.accept()
            return
        self.message.setText(check_text(check))
        self._show_lock(say=False)

    def _show_lock(self, say: bool = True) -> None:
        """Field and OK off while the gate is locked (the wait counted down each second)."""
        wait = self.gate.locked_s()
        locked = wait > 0
        self.field.setEnabled(not locked)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not locked)
        if locked:
            if say:
                self.message.setText(f"Too many wrong PINs: try again in {wait:.0f} s.")
            if not self._countdown.isActive():
                self._countdown.start()
        else:
            if self._countdown.isActive():
                self._countdown.stop()
                self.message.setText("")
            self.field.setFocus()

    def done(self, result: int) -> None:  # noqa: D102 - stop the timers with the dialog
        self._idle.stop()
        self._countdown.stop()
        super().done(result)


def ask_pin_blocking(gate: AdminGate, purpose: str, *, event_purpose: str = "") -> bool:
    """Ask for the PIN before any window shows (``faceapp gui``); True when it was given."""
    dialog = PinDialog(gate, purpose, event_purpose=event_purpose)
    dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
    return dialog.exec() == QDialog.DialogCode.Accepted
