"""The main window: a page list on the left, the pages, a status bar; the door kiosk variant."""

from __future__ import annotations

import logging

from PySide6.QtCore import QSize
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from faceapp.door import DoorMode
from faceapp.gui.context import AppContext
from faceapp.gui.pages.base import Page
from faceapp.gui.pages.door import DoorPage
from faceapp.gui.pages.enroll import EnrollPage
from faceapp.gui.pages.live import LivePage
from faceapp.gui.pages.log import LogPage
from faceapp.gui.pages.people import PeoplePage
from faceapp.gui.pages.settings import SettingsPage

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, *, kiosk: bool = False, door_mode: DoorMode | str | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.kiosk = kiosk
        self.setWindowTitle("faceapp - door" if kiosk else "faceapp")
        self.setMinimumSize(QSize(800, 560))
        self.resize(1200, 800)

        self.live = LivePage(ctx)
        self.enroll = EnrollPage(ctx)
        self.door = DoorPage(ctx, mode=door_mode or DoorMode.RECOGNIZE)
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

        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.status_models = QLabel("Loading face models...")
        self.status_camera = QLabel("")
        self.statusBar().addWidget(self.status_models, 1)
        self.statusBar().addPermanentWidget(self.status_camera)

        for key, slot in (("Ctrl+Q", self.close), ("F11", self.toggle_full_screen)):
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

        if kiosk:
            self.nav.hide()
            self.statusBar().hide()
        self._current = -1
        self.nav.setCurrentRow(self.pages.index(self.door) if kiosk else 0)

    # -- navigation -------------------------------------------------------------------------
    def show_page(self, index_or_page: int | Page) -> None:
        if self.kiosk:
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

    def toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # -- closing ----------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802
        self.hide()  # gone at once, even if a worker takes a moment to stop
        for page in self.pages:
            page.deactivate()
        if not self.ctx.shutdown():
            log.warning("some background work did not stop in time")
        super().closeEvent(event)
