"""Camera trouble is shown and recoverable; closing the window stops the stream cleanly."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.datasets


def test_a_camera_that_cannot_be_opened_is_shown_and_retry_recovers(qtbot, ctx, lfw_image, make_video, tmp_path):
    from faceapp.gui.window import MainWindow

    ctx.settings = ctx.settings.replace(camera=str(tmp_path / "unplugged.avi"))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    live = win.live
    qtbot.waitUntil(lambda: ctx.camera.state == "failed", timeout=10000)
    assert "Camera unavailable" in live.view.message() and "unplugged.avi" in live.view.message()
    assert live.retry_button.isVisible()

    video = make_video(lfw_image("Colin_Powell", 1), frames=100)
    ctx.settings = ctx.settings.replace(camera=str(video))
    with qtbot.waitSignal(ctx.camera.frame, timeout=30000):
        ctx.camera.stop()
        ctx.camera.start()
    assert live.view.message() == "" and not live.retry_button.isVisible()
    win.close()


def test_the_end_of_a_video_is_shown(qtbot, ctx, lfw_image, make_video):
    from faceapp.gui.window import MainWindow

    ctx.settings = ctx.settings.replace(camera=str(make_video(lfw_image("Colin_Powell", 1), frames=4)))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    with qtbot.waitSignal(ctx.camera.ended, timeout=30000):
        win.show()
    assert "has ended" in win.live.view.message()
    assert win.live.retry_button.isVisible()
    win.close()


def test_closing_the_window_stops_the_camera_worker_cleanly(qtbot, ctx, lfw_image, make_video):
    from faceapp.gui.window import MainWindow

    ctx.settings = ctx.settings.replace(camera=str(make_video(lfw_image("Colin_Powell", 1), frames=300)))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    with qtbot.waitSignal(ctx.camera.frame, timeout=30000):
        win.show()
    t0 = time.monotonic()
    win.close()
    assert time.monotonic() - t0 < 3.0
    assert ctx.pool.running() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("capture-")]
