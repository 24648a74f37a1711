"""`faceapp gui` / `faceapp door` end to end: the window shows, models load in the background."""

from __future__ import annotations

import argparse

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.datasets


def test_faceapp_door_starts_loads_the_models_in_the_background_and_exits_cleanly(
    qapp, engine, db_url, lfw_image, make_video
):
    import torch

    from faceapp.gui.app import cmd_door
    from faceapp.gui.window import MainWindow

    threads = torch.get_num_threads()
    video = make_video(lfw_image("Colin_Powell", 1), frames=200)
    args = argparse.Namespace(camera=str(video), windowed=True, mode="recognize", db=db_url, device="cpu", model=None)
    seen = {}

    def watch():
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if wins:
            win = wins[0]
            seen.setdefault("loading", win.ctx.ready is False and win.door.view.message())
            if win.ctx.camera.last is not None:  # models loaded, camera running: done
                seen["page"] = win.current_page().title
                win.close()
                return
        QTimer.singleShot(50, watch)

    QTimer.singleShot(0, watch)
    try:
        assert cmd_door(args) == 0
    finally:
        torch.set_num_threads(threads)
    assert seen["loading"] == "Loading face models..."  # the window was up before the models
    assert seen["page"] == "Door"
