"""The door recovers by itself from a camera that failed (or ended) while another page was
shown: coming back to the Door page retries the camera at once (issue 14, item 8)."""

from __future__ import annotations

import cv2
import numpy as np


def _blank_video(path, frames: int = 30) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()


def test_the_door_retries_a_camera_that_failed_while_another_page_was_shown(qtbot, ctx, tmp_path):
    from faceapp.gui.window import MainWindow

    video = tmp_path / "door-camera.avi"  # not there yet: the camera fails
    ctx.settings = ctx.settings.replace(camera=str(video))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: ctx.ready, timeout=10000)
    with qtbot.waitSignal(ctx.camera.failed, timeout=10000):
        win.show_page(win.door)
    win.show_page(win.people)  # the admin looks elsewhere; the camera is plugged in meanwhile
    _blank_video(video)
    assert ctx.camera.state == "failed"
    with qtbot.waitSignal(ctx.camera.opened, timeout=10000):
        win.show_page(win.door)  # back at the door: it does not stay on "Camera unavailable"
    qtbot.waitUntil(lambda: ctx.camera.state in ("running", "ended"), timeout=10000)
    win.close()


def test_a_log_flush_that_ends_after_the_door_screen_is_gone_is_ignored(window, monkeypatch):
    """The outbox is delivered in the background; when that work ends after the window (and
    the door page's timer) was destroyed, its result is dropped, not a RuntimeError in Qt's
    event loop (seen once in CI when a test's window closed mid-flush)."""
    import shiboken6

    page = window.door
    done = []
    monkeypatch.setattr(page.ctx, "task", lambda *a, on_result=None, **k: done.append(on_result))
    monkeypatch.setattr(page, "recorder", type("R", (), {"pending": [object()], "offline": None})())
    page.flush_pending_log()
    assert len(done) == 1
    shiboken6.delete(page._flush)  # the page's timer is gone, as after the window is destroyed
    done[0]((1, 0))  # must not raise
