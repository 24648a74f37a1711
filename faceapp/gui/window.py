"""The main window: a page list on the left, the pages, a status bar; the door kiosk variant.

The kiosk (``faceapp door``) shows the door page only. Leaving it needs the admin PIN
(:mod:`faceapp.admin`): Ctrl+Q, F11 (leave full screen) and closing the window (Alt+F4, the
window manager's close) open the PIN dialog and act only on the right PIN; so does the door's F2
(switch verify / recognize: the mode is the door's, not the visitor's). F12 opens the admin
pages after the PIN; F12 again, the "Back to the door" button or :data:`ADMIN_IDLE_MS` without
input lock them and return to the door. With no PIN set, the keys work without one and a banner
says so for :data:`NO_PIN_BANNER_MS` after the start (it never blocks the door).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QObject, QSize, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from faceapp.admin import AdminGate

from faceapp.door import DoorMode
from faceapp.gui.context import AppContext
from faceapp.gui.pages.base import Page
from faceapp.gui.pages.door import DoorPage
from faceapp.gui.pages.enroll import EnrollPage
from faceapp.gui.pages.live import LivePage
from faceapp.gui.pages.log import LogPage
from faceapp.gui.pages.people import PeoplePage
from faceapp.gui.pages.settings import SettingsPage
from faceapp.gui.window_admin import AdminEvents, PinDialog

log = logging.getLogger(__name__)

ADMIN_KEY = "F12"
ADMIN_IDLE_MS = 5 * 60_000  # the kiosk's admin pages lock themselves after 5 minutes without input
NO_PIN_BANNER_MS = 60_000
NO_PIN_TEXT = (
    "No admin PIN is set: anyone at this screen can leave it or open the admin pages. "
    "Set one with: faceapp admin set-pin"
)


class _Activity(QObject):
    """Restarts a timer on every key press and mouse click in the application."""

    def __init__(self, timer: QTimer) -> None:
        super().__init__()
        self.timer = timer

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel):
            self.timer.start()
        return False


class MainWindow(QMainWindow):
    def __init__(
        self,
        ctx: AppContext,
        *,
        kiosk: bool = False,
        door_mode: DoorMode | str | None = None,
        admin: AdminGate | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.kiosk = kiosk
        self.admin_events = AdminEvents()
        if admin is None:
            admin = AdminGate(on_event=self.admin_events)
        elif admin.on_event is None:
            admin.on_event = self.admin_events
        elif isinstance(admin.on_event, AdminEvents):
            self.admin_events = admin.on_event  # the checks made before the window (faceapp gui)
        self.admin = admin
        self.admin_events.attach(ctx)
        self.admin_unlocked = False  # kiosk: the admin pages are open
        self.pin_dialog: PinDialog | None = None
        self._close_allowed = False
        self.setWindowTitle("faceapp - door" if kiosk else "faceapp")
        self.setMinimumSize(QSize(800, 560))
        self.resize(1200, 800)

        self.live = LivePage(ctx)
        self.enroll = EnrollPage(ctx)
        self.door = DoorPage(ctx, mode=door_mode or DoorMode.RECOGNIZE)
        if kiosk:  # F2 (verify / recognize) is an admin action: a visitor must not pick the weaker rule
            self.door.mode_guard = lambda purpose, action: self._with_pin(purpose, "door mode", action)
        self.people = PeoplePage(ctx)
        self.log = LogPage(ctx)
        self.settings = SettingsPage(ctx)
        self.pages: list[Page] = [self.live, self.enroll, self.door, self.people, self.log, self.settings]

        self.stack = QStackedWidget()
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setFixedWidth(170)
        self.nav.setStyleSheet(
            "#nav { font-size: 15px; border: none; outline: 0; background: palette(alternate-base); }"
            "#nav::item { padding: 10px 12px; }"
            "#nav::item:selected { background: palette(highlight); color: palette(highlighted-text); }"
        )
        for i, page in enumerate(self.pages):
            self.stack.addWidget(page)
            item = QListWidgetItem(page.title)
            item.setToolTip(f"{page.title} (Ctrl+{i + 1})")
            self.nav.addItem(item)
            act = QAction(self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _=False, i=i: self.show_page(i))
            self.addAction(act)
        self.nav.currentRowChanged.connect(self._page_changed)

        # kiosk: the banner when no PIN is set; the admin bar while the admin pages are open
        self.banner = QLabel(NO_PIN_TEXT)
        self.banner.setObjectName("noPinBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("#noPinBanner { background: #ffb74d; color: #1a1a1a; padding: 8px 12px;"
                                  " font-size: 15px; font-weight: bold; }")
        self.banner.setVisible(False)
        self.admin_bar = QWidget()
        self.admin_bar.setObjectName("adminBar")
        self.admin_bar.setStyleSheet("#adminBar { background: #1f3a5f; } #adminBar QLabel { color: #ffffff; }")
        bar = QHBoxLayout(self.admin_bar)
        bar.setContentsMargins(12, 4, 12, 4)
        bar.addWidget(QLabel(f"Admin pages: {ADMIN_KEY} or the button goes back to the door and locks them"), 1)
        self.back_button = QPushButton("Back to the door")
        self.back_button.clicked.connect(self.lock_admin)
        bar.addWidget(self.back_button)
        self.admin_bar.setVisible(False)

        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.admin_bar)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        column.addLayout(row, 1)
        self.setCentralWidget(central)

        self.status_models = QLabel("Loading face models...")
        self.status_camera = QLabel("")
        self.statusBar().addWidget(self.status_models, 1)
        self.statusBar().addPermanentWidget(self.status_camera)

        for key, slot in (("Ctrl+Q", self.request_quit), ("F11", self.request_full_screen), (ADMIN_KEY, self.toggle_admin)):
            act = QAction(self)
            act.setShortcut(QKeySequence(key))
            act.triggered.connect(slot)
            self.addAction(act)

        ctx.status.connect(self.status_models.setText)
        ctx.engine_ready.connect(self._engine_ready)
        ctx.settings_changed.connect(lambda _s: self._camera_for(self.current_page()))
        ctx.camera.opened.connect(lambda info: self.status_camera.setText(f"Camera: {info.name}"))
        ctx.camera.failed.connect(lambda m: self.status_camera.setText("Camera: unavailable"))
        ctx.camera.ended.connect(lambda m: self.status_camera.setText("Camera: ended"))
        ctx.camera.stopped.connect(lambda: self.status_camera.setText("Camera: off"))
        self.people.reenroll_requested.connect(self.reenroll)
        for page in (self.live, self.door):
            signal = getattr(page, "enroll_requested", None)
            if signal is not None:
                signal.connect(self.go_enroll)

        self._admin_idle = QTimer(self)
        self._admin_idle.setSingleShot(True)
        self._admin_idle.setInterval(ADMIN_IDLE_MS)
        self._admin_idle.timeout.connect(self.lock_admin)
        self._activity = _Activity(self._admin_idle)
        self._banner_timer = QTimer(self)
        self._banner_timer.setSingleShot(True)
        self._banner_timer.setInterval(NO_PIN_BANNER_MS)
        self._banner_timer.timeout.connect(lambda: self.banner.setVisible(False))
        if kiosk:
            self.nav.hide()
            self.statusBar().hide()
            if not self.admin.is_set:
                log.warning("the door kiosk runs without an admin PIN: anyone can leave it (faceapp admin set-pin)")
                self.banner.setVisible(True)
                self._banner_timer.start()
        self._current = -1
        self.nav.setCurrentRow(self.pages.index(self.door) if kiosk else 0)

    # -- navigation -------------------------------------------------------------------------
    def show_page(self, index_or_page: int | Page) -> None:
        if self.kiosk and not self.admin_unlocked:
            return  # the kiosk shows the door only
        index = index_or_page if isinstance(index_or_page, int) else self.pages.index(index_or_page)
        self.nav.setCurrentRow(index)

    def current_page(self) -> Page:
        return self.pages[self.stack.currentIndex()]

    def _page_changed(self, index: int) -> None:
        if index < 0 or index == self._current:
            return
        if 0 <= self._current < len(self.pages):
            self.pages[self._current].deactivate()
        self._current = index
        page = self.pages[index]
        self.stack.setCurrentWidget(page)
        page.activate()
        self._camera_for(page)

    def _camera_for(self, page: Page) -> None:
        cam = self.ctx.camera
        if not self.isVisible():
            return  # another window (the kiosk) may be using the camera
        if page.needs_camera:
            if self.ctx.ready and cam.state in ("stopped", "starting", "running"):
                cam.start()
        elif cam.state in ("starting", "running"):
            cam.stop()  # the stream ends in the background; no camera use off the camera pages

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._camera_for(self.current_page())

    def _engine_ready(self) -> None:
        self._camera_for(self.current_page())

    def reenroll(self, name: str) -> None:
        self.enroll.set_replace(name)
        self.show_page(self.enroll)

    def go_enroll(self) -> None:
        """The empty-gallery hint's link: the Enroll page (the kiosk asks for the admin PIN first)."""
        if self.kiosk and not self.admin_unlocked:
            self._with_pin("enroll people", "admin pages (enroll)", lambda: (self._open_admin(), self.show_page(self.enroll)))
        else:
            self.show_page(self.enroll)

    def toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # -- the kiosk's lock-down --------------------------------------------------------------
    @property
    def locked_down(self) -> bool:
        """True when leaving this window needs the admin PIN (the kiosk, a PIN set, the admin
        pages not open)."""
        return self.kiosk and not self.admin_unlocked and self.admin.is_set

    def request_quit(self) -> None:
        """Ctrl+Q: quit (the kiosk asks for the admin PIN)."""
        self._with_pin("quit the door screen", "quit", self._close_now)

    def request_full_screen(self) -> None:
        """F11: leave or enter full screen (the kiosk asks for the admin PIN)."""
        self._with_pin("leave full screen" if self.isFullScreen() else "go full screen", "full screen",
                       self.toggle_full_screen)

    def toggle_admin(self) -> None:
        """The admin key: open the admin pages after the PIN, or lock them again."""
        if not self.kiosk:
            return  # faceapp gui asked for the PIN at start: its pages are open
        if self.admin_unlocked:
            self.lock_admin()
        else:
            self._with_pin("open the admin pages", "admin pages", self._open_admin)

    def _open_admin(self) -> None:
        if self.admin_unlocked:
            return
        self.admin_unlocked = True
        self.banner.setVisible(False)
        self.nav.show()
        self.admin_bar.show()
        self.statusBar().show()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self._activity)
        self._admin_idle.start()

    def lock_admin(self) -> None:
        """Back to the door; the admin pages need the PIN again."""
        if not self.kiosk or not self.admin_unlocked:
            return
        self.show_page(self.door)
        self.admin_unlocked = False
        self._admin_idle.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self._activity)
        self.nav.hide()
        self.admin_bar.hide()
        self.statusBar().hide()

    def _with_pin(self, purpose: str, event_purpose: str, action) -> None:
        """Run ``action`` now when nothing is locked down, else after the right admin PIN."""
        if not self.locked_down:
            action()
            return
        if self.pin_dialog is not None:
            self.pin_dialog.raise_()
            self.pin_dialog.activateWindow()
            return  # one PIN dialog at a time; it asks for what was asked first
        dialog = PinDialog(self.admin, purpose, self, event_purpose=f"{event_purpose}, door kiosk")
        self.pin_dialog = dialog

        def finished(result: int) -> None:
            self.pin_dialog = None
            dialog.deleteLater()
            if result == PinDialog.DialogCode.Accepted:
                action()

        dialog.finished.connect(finished)
        dialog.open()

    def _close_now(self) -> None:
        self._close_allowed = True
        if not self.close():
            self._close_allowed = False

    # -- closing ----------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802
        if self.locked_down and not self._close_allowed:
            event.ignore()  # Alt+F4, the window manager's close button: only with the admin PIN
            QTimer.singleShot(0, lambda: self._with_pin("close the door screen", "close", self._close_now))
            return
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self._activity)
        self.hide()  # gone at once, even if a worker takes a moment to stop
        for page in self.pages:
            page.deactivate()
        if not self.ctx.shutdown():
            log.warning("some background work did not stop in time")
        super().closeEvent(event)
