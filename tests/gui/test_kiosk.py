"""The door kiosk's lock-down: Ctrl+Q, F11 and closing the window (Alt+F4 / the window manager's
close arrive as close events) do nothing without the admin PIN and work with it; the admin key
opens the admin pages only on the right PIN and locks them again; wrong PINs lock the dialog;
no PIN set: a banner says so and the keys work. A light app context (no face models)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from faceapp.admin import AdminGate, AdminPin

PIN = "2468"


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def light_ctx(qapp, sqlite_url, tmp_path):
    from faceapp.config import Settings
    from faceapp.gui.context import AppContext
    from faceapp.storage import open_store

    store = open_store(sqlite_url)
    ctx = AppContext(Settings(device="cpu", db_url=sqlite_url, camera=str(tmp_path / "no-camera.avi")),
                     store=store, settings_file=tmp_path / "settings.toml")
    yield ctx
    assert ctx.shutdown()
    store.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def gate(tmp_path, clock):
    pin = AdminPin(tmp_path / "config" / "admin_pin.json")
    pin.set(PIN)
    return AdminGate(pin, clock=clock)


def _kiosk(qtbot, ctx, gate):
    from faceapp.gui.window import MainWindow

    win = MainWindow(ctx, kiosk=True, admin=gate)
    qtbot.addWidget(win)
    win.showFullScreen()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=3000)
    return win


def _type_pin(qtbot, win, pin: str) -> None:
    if win.pin_dialog is None:
        win.activateWindow()
    qtbot.waitUntil(lambda: win.pin_dialog is not None and win.pin_dialog.isVisible(), timeout=3000)
    dialog = win.pin_dialog
    qtbot.keyClicks(dialog.field, pin)
    qtbot.keyClick(dialog.field, Qt.Key.Key_Return)


def _admin_events(ctx, qtbot, n):
    qtbot.waitUntil(lambda: len([e for e in ctx.store.events() if e.kind == "admin"]) >= n, timeout=5000)
    return sorted((e for e in ctx.store.events() if e.kind == "admin"), key=lambda e: e.id)


def test_ctrl_q_needs_the_admin_pin(qtbot, light_ctx, gate):
    win = _kiosk(qtbot, light_ctx, gate)
    qtbot.keyClick(win, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    _type_pin(qtbot, win, "1111")
    assert win.isVisible() and win.pin_dialog is not None  # wrong: still open, the dialog asks again
    assert win.pin_dialog.message.text() == "Wrong PIN. 2 more tries before a wait."
    win.pin_dialog.reject()
    assert win.pin_dialog is None and win.isVisible()  # cancelled: nothing happened
    qtbot.keyClick(win, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    _type_pin(qtbot, win, PIN)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=3000)
    events = _admin_events(light_ctx, qtbot, 2)
    assert [e.detail for e in events] == ["wrong admin PIN (quit, door kiosk): 1 in a row",
                                          "admin PIN accepted (quit, door kiosk) after 1 wrong PIN(s)"]


def test_f2_switches_the_door_mode_only_with_the_admin_pin(qtbot, light_ctx, gate):
    # verify mode is the weaker rule for a face nearly as close to two people (no margin): a visitor
    # must not pick it; the mode is the door's setting, changed by whoever holds the PIN
    from faceapp.door import DoorMode

    win = _kiosk(qtbot, light_ctx, gate)
    assert win.door.mode is DoorMode.RECOGNIZE
    qtbot.keyClick(win.door, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: win.pin_dialog is not None, timeout=3000)
    assert win.door.mode is DoorMode.RECOGNIZE  # nothing before the PIN
    win.pin_dialog.reject()
    assert win.door.mode is DoorMode.RECOGNIZE
    qtbot.keyClick(win.door, Qt.Key.Key_F2)
    _type_pin(qtbot, win, PIN)
    qtbot.waitUntil(lambda: win.door.mode is DoorMode.VERIFY, timeout=3000)
    events = _admin_events(light_ctx, qtbot, 1)
    assert "door mode" in events[-1].detail
    win._close_now()


def test_closing_the_window_needs_the_admin_pin(qtbot, light_ctx, gate):
    win = _kiosk(qtbot, light_ctx, gate)
    assert win.close() is False  # Alt+F4 / the close button: the close event is ignored
    assert win.isVisible()
    _type_pin(qtbot, win, "0000")
    assert win.isVisible()
    win.pin_dialog.reject()
    assert win.close() is False
    _type_pin(qtbot, win, PIN)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=3000)


def test_f11_leaves_full_screen_only_with_the_admin_pin(qtbot, light_ctx, gate):
    win = _kiosk(qtbot, light_ctx, gate)
    assert win.isFullScreen()
    qtbot.keyClick(win, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: win.pin_dialog is not None, timeout=3000)
    win.pin_dialog.reject()
    assert win.isFullScreen()
    qtbot.keyClick(win, Qt.Key.Key_F11)
    _type_pin(qtbot, win, PIN)
    qtbot.waitUntil(lambda: not win.isFullScreen(), timeout=3000)
    win._close_now()


def test_the_admin_key_opens_the_admin_pages_on_the_right_pin_and_locks_them_again(qtbot, light_ctx, gate):
    win = _kiosk(qtbot, light_ctx, gate)
    win.show_page(win.people)
    assert win.current_page() is win.door  # the kiosk shows the door only
    qtbot.keyClick(win, Qt.Key.Key_F12)
    _type_pin(qtbot, win, "9999")
    win.pin_dialog.reject()
    assert not win.admin_unlocked and win.nav.isHidden()
    qtbot.keyClick(win, Qt.Key.Key_F12)
    _type_pin(qtbot, win, PIN)
    qtbot.waitUntil(lambda: win.admin_unlocked, timeout=3000)
    assert win.nav.isVisible() and win.admin_bar.isVisible()
    win.show_page(win.settings)
    assert win.current_page() is win.settings
    qtbot.keyClick(win, Qt.Key.Key_F11)  # the admin is in: no PIN asked
    assert win.pin_dialog is None and not win.isFullScreen()
    win.back_button.click()  # back to the door: locked again
    assert not win.admin_unlocked and win.current_page() is win.door and win.nav.isHidden()
    assert win.close() is False
    win._close_now()


def test_wrong_pins_lock_the_dialog_for_a_while(qtbot, light_ctx, gate, clock):
    win = _kiosk(qtbot, light_ctx, gate)
    qtbot.keyClick(win, Qt.Key.Key_F12)
    for guess in ("1111", "2222", "3333"):
        _type_pin(qtbot, win, guess)
    dialog = win.pin_dialog
    assert dialog.message.text() == "Wrong PIN. Too many wrong PINs: wait 30 s."
    assert not dialog.field.isEnabled()
    dialog.try_pin()  # even with the field bypassed, the gate refuses without checking
    assert dialog.isVisible() and not win.admin_unlocked
    assert dialog.message.text() == "Too many wrong PINs: try again in 30 s."
    clock.t += 30
    dialog._show_lock()
    assert dialog.field.isEnabled()
    _type_pin(qtbot, win, PIN)
    qtbot.waitUntil(lambda: win.admin_unlocked, timeout=3000)
    details = [e.detail for e in _admin_events(light_ctx, qtbot, 5)]
    assert details[2] == "wrong admin PIN (admin pages, door kiosk): 3 in a row; locked for 30 s"
    assert details[3].startswith("admin PIN refused without checking")
    win.lock_admin()
    win._close_now()


def test_without_a_pin_the_kiosk_says_so_and_its_keys_work(qtbot, light_ctx, tmp_path):
    gate = AdminGate(AdminPin(tmp_path / "no-pin.json"))
    win = _kiosk(qtbot, light_ctx, gate)
    assert win.banner.isVisible() and "No admin PIN is set" in win.banner.text()
    assert win.current_page() is win.door  # a banner, not a modal: the door works
    qtbot.keyClick(win, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=3000)
    assert win.pin_dialog is None


def test_faceapp_gui_asks_for_the_pin_before_it_opens(qtbot, gate):
    from faceapp.gui.window_admin import ask_pin_blocking

    def answer(pin, then=None):
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, lambda: answer(pin, then))
            return
        dialog.field.setText(pin)
        dialog.try_pin()
        if then is not None:
            QTimer.singleShot(20, then)

    QTimer.singleShot(20, lambda: answer("1357", then=lambda: QApplication.activeModalWidget().reject()))
    assert ask_pin_blocking(gate, "open faceapp") is False
    QTimer.singleShot(20, lambda: answer(PIN))
    assert ask_pin_blocking(gate, "open faceapp") is True


def test_the_empty_gallery_hint_leads_to_enroll_and_in_the_kiosk_through_the_pin(qtbot, light_ctx, gate):
    from faceapp.gui.window import MainWindow

    desk = MainWindow(light_ctx)
    qtbot.addWidget(desk)
    desk.show()
    assert desk.live.empty_hint.isVisible()
    desk.live.empty_hint.linkActivated.emit("enroll")
    assert desk.current_page() is desk.enroll
    desk.close()
    win = _kiosk(qtbot, light_ctx, gate)
    win.door.empty_hint.linkActivated.emit("enroll")
    assert win.current_page() is win.door  # not without the PIN
    _type_pin(qtbot, win, PIN)
    qtbot.waitUntil(lambda: win.current_page() is win.enroll, timeout=3000)
    assert win.admin_unlocked
    win.lock_admin()
    win._close_now()
