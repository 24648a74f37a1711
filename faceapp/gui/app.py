"""Composition root of the desktop app: ``faceapp gui`` and ``faceapp door``.

The window shows at once; the database opens and the face models load in worker threads,
with their progress in the status bar.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)


def _qt_app():
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(sys.argv[:1])
        app.setApplicationName("faceapp")
        app.setApplicationDisplayName("faceapp")
        app.setStyle("Fusion")
    return app


def build(
    settings,
    *,
    kiosk: bool = False,
    door_mode: str | None = None,
    store=None,
    engine=None,
    settings_file=None,
    torch_threads: int | None = None,
    admin=None,
):
    """The context and the main window (not shown, nothing loaded yet: call ``ctx.start()``).
    ``admin``: the :class:`faceapp.admin.AdminGate` (default: the installed PIN)."""
    from faceapp.gui.context import AppContext
    from faceapp.gui.window import MainWindow

    ctx = AppContext(settings, store=store, engine=engine, settings_file=settings_file, torch_threads=torch_threads)
    return ctx, MainWindow(ctx, kiosk=kiosk, door_mode=door_mode, admin=admin)


def _run(args: argparse.Namespace, *, kiosk: bool) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's OpenMP threads must not spin
    from PySide6.QtCore import QTimer

    from faceapp.cli.main import _settings

    settings = _settings(args)
    camera = getattr(args, "camera", None)
    if camera:
        settings = settings.replace(camera=camera)
    app = _qt_app()
    from faceapp.admin import AdminGate
    from faceapp.gui.window_admin import AdminEvents, ask_pin_blocking

    events = AdminEvents()
    gate = AdminGate(on_event=events)  # its events are logged once the window's store is open
    if not kiosk and gate.is_set and not ask_pin_blocking(gate, "open faceapp", event_purpose="faceapp gui"):
        log.warning("faceapp gui: the admin PIN was not given; nothing opened")
        _log_now(settings, events.pending)
        return 0
    # the networks' threads are the setting ``threads`` (every core by default; idle ones sleep)
    ctx, win = build(settings, kiosk=kiosk, door_mode=getattr(args, "mode", None), admin=gate)
    if kiosk and not getattr(args, "windowed", False):
        win.showFullScreen()
    else:
        win.show()
    QTimer.singleShot(0, ctx.start)
    try:
        return int(app.exec())
    finally:
        ctx.shutdown()


def _log_now(settings, texts: list[str]) -> None:
    """Write admin events when no window will (the PIN was refused at start)."""
    if not texts:
        return
    from faceapp.admin import ADMIN_EVENT_KIND
    from faceapp.errors import FaceAppError
    from faceapp.storage import open_store

    try:
        store = open_store(settings.resolved_db_url)
        try:
            for text in texts:
                store.log_event(ADMIN_EVENT_KIND, detail=text)
        finally:
            store.close()
    except FaceAppError as exc:
        log.warning("admin events not logged: %s", exc)


def cmd_gui(args: argparse.Namespace) -> int:
    """``faceapp gui``: the desktop app."""
    return _run(args, kiosk=False)


def cmd_door(args: argparse.Namespace) -> int:
    """``faceapp door``: straight into the door screen, full screen (``--windowed`` not)."""
    return _run(args, kiosk=True)
