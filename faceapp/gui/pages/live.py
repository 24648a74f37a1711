"""Live: the camera picture with each face's box, landmarks, best match and distance.

Each face is named as the door would name it (``FaceService.recognize``: the threshold for the
gallery's size, never above tau, and a margin to the second-nearest person); otherwise it
reads 'not recognized' with its nearest distance. The bar shows the threshold in force.

The "68 landmarks" toggle draws the landmark CNN's points, contours and head pose (the setting
``show_landmarks``, for this session; the Settings page saves it)."""

from __future__ import annotations

import dataclasses

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from faceapp.gui.context import AppContext, CameraOpened, LiveFrame, error_text
from faceapp.gui.messages import EMPTY_GALLERY_HTML
from faceapp.gui.pages.base import Page
from faceapp.gui.pages.common import face_overlays
from faceapp.gui.widgets import VideoView

log = logging.getLogger(__name__)


class LivePage(Page):
    title = "Live"
    needs_camera = True

    enroll_requested = Signal()  # the empty-gallery hint's link

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(ctx, parent)
        self.view = VideoView(placeholder="Loading face models...")
        self.empty_hint = QLabel(EMPTY_GALLERY_HTML)
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setStyleSheet("#emptyHint { background: #ffe0b2; color: #1a1a1a; padding: 6px 10px; }"
                                      " #emptyHint a { color: #0b3d91; }")
        self.empty_hint.setTextFormat(Qt.TextFormat.RichText)
        self.empty_hint.linkActivated.connect(lambda _link: self.enroll_requested.emit())
        self.empty_hint.setVisible(False)
        self.info = QLabel("")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("&Retry camera")
        self.retry_button.setToolTip("Open the camera again (Ctrl+R)")
        self.retry_button.setVisible(False)
        self.retry_button.clicked.connect(self.retry)
        self.landmarks_box = QCheckBox("68 &landmarks")
        self.landmarks_box.setToolTip("Draw the 68-point landmarks, the head pose and the eye opening of each face")
        self.landmarks_box.setChecked(ctx.settings.show_landmarks)
        self.landmarks_box.toggled.connect(self.set_show_landmarks)

        bar = QHBoxLayout()
        bar.addWidget(self.info, 1)
        bar.addWidget(self.landmarks_box)
        bar.addWidget(self.retry_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.view, 1)
        layout.addLayout(bar)

        cam = ctx.camera
        cam.opened.connect(self._opened)
        cam.frame.connect(self._frame)
        cam.failed.connect(self._failed)
        cam.ended.connect(self._ended)
        ctx.engine_failed.connect(lambda msg: self.view.set_message(f"Face models could not be loaded:\n{msg}", error=True))
        ctx.settings_changed.connect(lambda st: self.landmarks_box.setChecked(st.show_landmarks))
        ctx.store_ready.connect(self.refresh_hint)
        ctx.people_changed.connect(self.refresh_hint)
        self.refresh_hint()

    def refresh_hint(self) -> None:
        """"Nobody is enrolled yet: Enroll" while the gallery is empty."""
        if self.ctx.store is None:
            return
        try:
            empty = not self.ctx.store.list_people()
        except Exception as exc:  # the database's own trouble is shown elsewhere
            log.debug("people not counted: %s", error_text(exc))
            return
        self.empty_hint.setVisible(empty)

    def set_show_landmarks(self, on: bool) -> None:
        """Draw (or stop drawing) the 68 landmarks; applies to this session's settings."""
        if bool(on) != self.ctx.settings.show_landmarks:
            self.ctx.apply_settings(dataclasses.replace(self.ctx.settings, show_landmarks=bool(on)))

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
        shown = frame.landmarks if self.ctx.settings.show_landmarks else None
        service = self.ctx.service
        people = getattr(result, "gallery_size", None)
        readings = None
        if service is not None:
            readings = [service.recognize(face.candidates, people) for face in result.faces]
        self.view.set_frame(frame.image, face_overlays(result, readings, landmarks=shown))
        t = result.timings
        n = len(result.faces)
        lm = f", landmarks {t['landmarks']:.0f}" if "landmarks" in t else ""
        self.info.setText(
            f"{self.ctx.camera.source_name}   {self.ctx.camera.fps:4.1f} fps   inference {frame.inference_ms:5.0f} ms "
            f"(detect {t.get('detect', 0):.0f}, embed {t.get('embed', 0):.0f}{lm})   "
            f"{n} face{'s' if n != 1 else ''}   {self._threshold_text(service, people)}"
        )

    def _threshold_text(self, service, people: int | None) -> str:
        """'threshold 0.114 for 20 people (tau 0.150), margin 0.02': what names a face now."""
        tau = self.ctx.engine.threshold
        if service is None:
            return f"threshold {tau:.3f}"
        rule = service.recognize_rule()
        if people is None:
            return f"threshold {tau:.3f}, margin {rule.margin:.2f}"
        who = "person" if people == 1 else "people"
        return f"threshold {rule.threshold(people):.3f} for {people} {who} (tau {tau:.3f}), margin {rule.margin:.2f}"

    def _failed(self, message: str) -> None:
        self.view.set_message(
            f"Camera unavailable\n{message}\n\nCheck the camera source in Settings, then press Retry.", error=True
        )
        self.retry_button.setVisible(True)
        self.info.setText("camera unavailable")

    def _ended(self, message: str) -> None:
        self.view.set_message(f"{message}.\nPress Retry to play it again.")
        self.retry_button.setVisible(True)
