"""Live: the camera picture with each face's box, landmarks, best match and distance."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from faceapp.gui.context import AppContext, CameraOpened, LiveFrame
from faceapp.gui.pages.base import Page
from faceapp.gui.pages.common import face_overlays
from faceapp.gui.widgets import VideoView


class LivePage(Page):
    title = "Live"
    needs_camera = True

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(ctx, parent)
        self.view = VideoView(placeholder="Loading face models...")
        self.info = QLabel("")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("&Retry camera")
        self.retry_button.setToolTip("Open the camera again (Ctrl+R)")
        self.retry_button.setVisible(False)
        self.retry_button.clicked.connect(self.retry)

        bar = QHBoxLayout()
        bar.addWidget(self.info, 1)
        bar.addWidget(self.retry_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addLayout(bar)

        cam = ctx.camera
        cam.opened.connect(self._opened)
        cam.frame.connect(self._frame)
        cam.failed.connect(self._failed)
        cam.ended.connect(self._ended)
        ctx.engine_failed.connect(lambda msg: self.view.set_message(f"Face models could not be loaded:\n{msg}", error=True))

    def retry(self) -> None:
        if self.ctx.ready:
            self.retry_button.setVisible(False)
            self.view.set_message("Starting camera...")
            self.ctx.camera.retry()

    def activate(self) -> None:
        if self.ctx.camera.state == "starting":
            self.view.set_message("Starting camera...")

    def _opened(self, info: CameraOpened) -> None:
        self.view.set_message("")
        self.retry_button.setVisible(False)
        self.info.setText(f"{info.name}: waiting for the first frame...")

    def _frame(self, frame: LiveFrame) -> None:
        if not self.isVisible():
            return
        result = frame.result
        self.view.set_message("")
        self.view.set_frame(frame.image, face_overlays(result))
        t = result.timings
        n = len(result.faces)
        self.info.setText(
            f"{self.ctx.camera.source_name}   {self.ctx.camera.fps:4.1f} fps   inference {frame.inference_ms:5.0f} ms "
            f"(detect {t.get('detect', 0):.0f}, embed {t.get('embed', 0):.0f})   "
            f"{n} face{'s' if n != 1 else ''}   threshold {self.ctx.engine.threshold:.3f}"
        )

    def _failed(self, message: str) -> None:
        self.view.set_message(
            f"Camera unavailable\n{message}\n\nCheck the camera source in Settings, then press Retry.", error=True
        )
        self.retry_button.setVisible(True)
        self.info.setText("camera unavailable")

    def _ended(self, message: str) -> None:
        self.view.set_message(f"{message}.\nPress Retry to play it again.")
        self.retry_button.setVisible(True)
