"""Fixtures for the desktop app's tests: the app wired to a temp database and the session's
face engine, and camera "videos" made of LFW photos (MJPG .avi in tmp_path)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

FRAME_W, FRAME_H = 640, 480


def paste(photo: np.ndarray, *, background: int = 90) -> np.ndarray:
    """An RGB photo centred in a 640x480 frame (at its own size, so it stays sharp)."""
    frame = np.full((FRAME_H, FRAME_W, 3), background, np.uint8)
    h, w = photo.shape[:2]
    y, x = (FRAME_H - h) // 2, (FRAME_W - w) // 2
    frame[y : y + h, x : x + w] = photo
    return frame


@pytest.fixture
def make_video(tmp_path):
    """make_video(photo_path, frames=40, fps=10) -> path of an .avi showing the photo."""
    import cv2

    from faceapp.imageio import load_image

    def make(photo: Path, *, frames: int = 40, fps: float = 10.0, name: str | None = None) -> Path:
        path = tmp_path / (name or f"{Path(photo).stem}.avi")
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (FRAME_W, FRAME_H))
        assert writer.isOpened()
        bgr = cv2.cvtColor(paste(load_image(photo)), cv2.COLOR_RGB2BGR)
        for _ in range(frames):
            writer.write(bgr)
        writer.release()
        return path

    return make


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return tmp_path / "settings.toml"


@pytest.fixture
def gui_settings(db_url, tmp_path):
    from faceapp.config import Settings

    # No webcam in tests: the default camera is a file that does not exist (tests that need
    # frames point the app at a video of their own).
    return Settings(
        device="cpu",
        db_url=db_url,
        camera=str(tmp_path / "no-camera.avi"),
        door_frames=3,
        door_timeout_s=20.0,
        door_reset_s=30.0,
        # the GUI tests play videos made of still LFW photos, which the anti-spoofing network (on
        # by default where torch is installed) rightly denies as pictures; the network at the
        # door is tested in tests/test_door_antispoof.py and tests/test_headless_door.py
        antispoof=False,
    )


@pytest.fixture
def ctx(qapp, service, engine, analyzer, gui_settings, settings_file):
    """The app's context on the test database and the session engine (ready at once)."""
    from faceapp.gui.context import AppContext

    saved, saved_limits = engine.settings, analyzer.settings
    c = AppContext(gui_settings, store=service.store, engine=engine, settings_file=settings_file, analyzer=analyzer)
    c.start()
    yield c
    assert c.shutdown(), "a worker did not stop"
    engine.settings = saved  # the settings page may have changed the shared engine's threshold
    analyzer.set_settings(saved_limits)  # ... and the shared analyzer's limits


@pytest.fixture
def window(qtbot, ctx):
    from faceapp.gui.window import MainWindow

    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def use_camera(ctx, spec) -> None:
    """Point the running app at another camera source (as the settings page does)."""
    ctx.settings = dataclasses.replace(ctx.settings, camera=str(spec))


class Catcher:
    """Records a worker's signals in the GUI thread (pytest-qt's blockers would be called in
    the emitting thread). ``catch.got`` is a list of (signal name, args)."""

    def __init__(self, **signals) -> None:
        from PySide6.QtCore import QObject

        class _Receiver(QObject):
            def __init__(self, owner, name):
                super().__init__()
                self.owner, self.name = owner, name

            def got(self, *args):
                self.owner.got.append((self.name, args))

        self.got: list[tuple[str, tuple]] = []
        self._receivers = []
        for name, signal in signals.items():
            r = _Receiver(self, name)
            signal.connect(r.got)
            self._receivers.append(r)

    def names(self) -> list[str]:
        return [n for n, _ in self.got]

    def args(self, name: str) -> tuple:
        return next(a for n, a in self.got if n == name)


@pytest.fixture
def catcher():
    """The Catcher class (test modules cannot import conftest)."""
    return Catcher
