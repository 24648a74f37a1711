"""Enroll: one photo (a file, a drop or a camera snapshot) -> checked -> named -> saved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceapp.errors import AlreadyEnrolled, DuplicatePerson, FaceRejected, ImageError
from faceapp.gui import dialogs
from faceapp.gui.context import AppContext, LiveFrame, error_text
from faceapp.gui.messages import quality_verdict
from faceapp.gui.pages.base import Page
from faceapp.gui.pages.common import face_overlay, landmark_text
from faceapp.gui.widgets import BAD, GOOD, NEUTRAL, WARN, ImageBox, VideoView, to_qimage
from faceapp.types import Candidate, Decision

PHOTO_FILTER = "Photos (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff);;All files (*)"
COUNTDOWN_S = 3


@dataclass(frozen=True, eq=False)
class Preview:
    """What the page knows about a photo before saving it."""

    image: np.ndarray  # RGB, as analysed
    probe: object  # faceapp.services.Probe
    nearest: tuple[Candidate, ...]
    source: str
    face: int | None = None  # the face chosen in a group photo (its index in the photo's detections)


def analyse(service, source, label: str, face: int | None = None) -> Preview:
    """Worker function: load the photo, find its face (with the 68-landmark eyes / head-pose
    checks that enrollment applies) and the nearest enrolled people. ``face``: the face the
    admin clicked in a group photo."""
    from faceapp.imageio import load_image

    image = load_image(source, max_side=service.settings.max_image_side)
    probe = service.probe(image, check_landmarks=True, face=face)
    nearest: tuple[Candidate, ...] = ()
    if probe.observation is not None:
        nearest = tuple(service.gallery().nearest(probe.observation.embedding, 3))
    return Preview(image, probe, nearest, label, face)


class EnrollPage(Page):
    title = "Enroll"
    needs_camera = True

    analysed = Signal(object)  # Preview (for tests and the status bar)
    enrolled = Signal(str)  # the name
    failed = Signal(str)

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(ctx, parent)
        self.setAcceptDrops(True)
        self._preview: Preview | None = None
        self._replace: str | None = None  # re-enroll mode: the person's name
        self._busy = False
        self._countdown = 0
        self._similar: Candidate | None = None

        self.view = VideoView(placeholder=self._placeholder())
        self.view.clicked.connect(self.pick_face)  # a group photo: the face to enroll
        self.open_button = QPushButton("&Open photo...")
        self.open_button.setToolTip("Pick a photo file (Ctrl+O); you can also drop one here")
        self.open_button.clicked.connect(self.open_dialog)
        self.snap_button = QPushButton("Take &snapshot")
        self.snap_button.setToolTip(f"Take a photo with the camera after a {COUNTDOWN_S} s countdown (Ctrl+T)")
        self.snap_button.clicked.connect(self.take_snapshot)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.snap_button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.view, 1)
        left.addLayout(buttons)

        self.crop = ImageBox(160, "aligned face")
        self.verdict = QLabel("Pick a photo of one person, facing the camera.")
        self.verdict.setWordWrap(True)
        f = self.verdict.font()
        f.setPointSizeF(f.pointSizeF() * 1.25)
        f.setBold(True)
        self.verdict.setFont(f)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setStyleSheet("color: #3c3c3c;")  # legible on the light window background
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(f"color: {WARN.name()}; font-weight: bold;")
        self.warning.setVisible(False)
        self.anyway = QCheckBox("Enroll anyway: this is a different person")
        self.anyway.setVisible(False)
        self.anyway.toggled.connect(self._update_buttons)
        self.mode_label = QLabel("")
        self.mode_label.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Full name")
        self.name_edit.setMaxLength(200)
        self.name_edit.textChanged.connect(self._update_buttons)
        self.name_edit.returnPressed.connect(self.enroll)
        self.enroll_button = QPushButton("&Enroll")
        self.enroll_button.setDefault(True)
        self.enroll_button.clicked.connect(self.enroll)
        self.cancel_replace = QPushButton("Cancel re-enroll")
        self.cancel_replace.setVisible(False)
        self.cancel_replace.clicked.connect(lambda: self.set_replace(None))
        self.result = QLabel("")
        self.result.setWordWrap(True)

        check = QGroupBox("Check")
        cl = QVBoxLayout(check)
        crop_row = QHBoxLayout()
        crop_row.addWidget(self.crop)
        crop_row.addStretch(1)
        cl.addLayout(crop_row)
        cl.addWidget(self.verdict)
        cl.addWidget(self.details)
        cl.addWidget(self.warning)
        cl.addWidget(self.anyway)
        save = QGroupBox("Save")
        form = QFormLayout(save)
        form.addRow(self.mode_label)
        form.addRow("&Name:", self.name_edit)
        row = QHBoxLayout()
        row.addWidget(self.enroll_button)
        row.addWidget(self.cancel_replace)
        row.addStretch(1)
        form.addRow(row)
        form.addRow(self.result)
        right = QVBoxLayout()
        right.addWidget(check)
        right.addWidget(save)
        right.addStretch(1)
        side = QWidget()
        side.setLayout(right)
        side.setMinimumWidth(300)
        side.setMaximumWidth(420)

        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(side)

        QShortcut(QKeySequence.StandardKey.Open, self, self.open_dialog)
        QShortcut(QKeySequence("Ctrl+T"), self, self.take_snapshot)
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._countdown_step)
        ctx.camera.frame.connect(self._live_frame)
        ctx.engine_ready.connect(self._update_buttons)
        ctx.engine_ready.connect(lambda: self.view.set_message(self._placeholder()) if self._preview is None else None)
        self.set_replace(None)

    def _placeholder(self) -> str:
        if not self.ctx.ready:
            return "Loading face models..."
        return "Drop a photo here, open one (Ctrl+O)\nor take a snapshot with the camera (Ctrl+T)"

    # -- modes ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start clean: no photo, no verdict, no look-alike warning, no result message."""
        self._tick.stop()
        self._countdown = 0
        self.view.set_big_text("")
        self._preview = None
        self._similar = None
        self.view.clear(self._placeholder())
        self.crop.set_image(None)
        self.verdict.setText("Pick a photo of one person, facing the camera.")
        self.verdict.setStyleSheet("")
        self.details.setText("")
        self.result.setText("")
        self.result.setStyleSheet("")
        self._show_similar()
        self._update_buttons()

    def set_replace(self, name: str | None) -> None:
        """Re-enroll ``name`` (replace their photo; the page opens clean, without the photo
        and warnings of before), or None for a new person."""
        if name:
            self.reset()
        self._replace = name
        if name:
            self.mode_label.setText(f"Re-enrolling <b>{name}</b>: the new photo replaces their current one.")
            self.name_edit.setText(name)
            self.name_edit.setReadOnly(True)
            self.enroll_button.setText("&Re-enroll")
        else:
            self.mode_label.setText("A new person: type their name.")
            if self.name_edit.isReadOnly():  # leaving re-enroll mode: that name is not wanted
                self.name_edit.clear()
            self.name_edit.setReadOnly(False)
            self.enroll_button.setText("&Enroll")
        self.cancel_replace.setVisible(bool(name))
        self._show_similar()
        self._update_buttons()

    # -- input ------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path = dialogs.open_file(self, "Open a photo", PHOTO_FILTER, protected=dialogs.database_files(self.ctx))
        if path:
            self.load_file(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.load_file(files[0])

    def load_file(self, path: str | Path) -> None:
        why = dialogs.refusal(path, dialogs.database_files(self.ctx))  # e.g. faceapp.db dropped here
        if why is not None:  # reading it would drop this process's SQLite locks on it
            self._analyse_failed(ImageError(why))
            return
        self._analyse(str(path), Path(path).name)

    def take_snapshot(self) -> None:
        cam = self.ctx.camera
        if not self.ctx.ready:
            self._say("The face models are still loading.", BAD)
            return
        if cam.state not in ("starting", "running"):
            cam.start()
        self._countdown = COUNTDOWN_S
        self.view.set_message("")
        self.view.set_big_text(str(self._countdown))
        self._tick.start()

    def _countdown_step(self) -> None:
        self._countdown -= 1
        if self._countdown > 0:
            self.view.set_big_text(str(self._countdown))
            return
        self._tick.stop()
        self.view.set_big_text("")
        last = self.ctx.camera.last
        if last is None:
            msg = self.ctx.camera.error or "the camera has not delivered a picture yet"
            self._say(f"No snapshot: {msg}", BAD)
            return
        self._analyse(np.array(last.result.frame), "camera snapshot")

    def _live_frame(self, frame: LiveFrame) -> None:
        if self._tick.isActive() and self.isVisible():
            self.view.set_frame(frame.image)

    # -- analysis ---------------------------------------------------------------------------
    def pick_face(self, x: float, y: float) -> None:
        """A click on the photo: in a group photo, the face under it is the one to enroll."""
        p = self._preview
        if p is None or self._busy or len(p.probe.detections) < 2:
            return
        dets = p.probe.detections
        hits = [i for i, d in enumerate(dets) if d.bbox.x1 <= x <= d.bbox.x2 and d.bbox.y1 <= y <= d.bbox.y2]
        if hits:
            self._analyse(p.image, p.source, face=min(hits, key=lambda i: dets[i].bbox.area))

    def _analyse(self, source, label: str, *, face: int | None = None) -> None:
        if not self.ctx.ready:
            self._say("The face models are still loading; try again in a moment.", BAD)
            return
        self._busy = True
        self._preview = None
        self._similar = None
        self.result.setText("")
        self.crop.set_image(None)
        self.verdict.setText(f"Checking {label}...")
        self.verdict.setStyleSheet("")
        self.details.setText("")
        self._show_similar()
        self._update_buttons()
        self.ctx.task(
            analyse, self.ctx.service, source, label, face, on_result=self._analysed, on_error=self._analyse_failed,
            name="analyse",
        )

    def _analysed(self, preview: Preview) -> None:
        self._busy = False
        self._preview = preview
        probe = preview.probe
        obs = probe.observation
        ok, text = quality_verdict(probe.decision, obs.quality if obs else None, probe.faces)
        if probe.decision is Decision.MULTIPLE_FACES:
            text += ": click the face to enroll"
        overlays = []
        face = probe.landmarks
        for i, det in enumerate(probe.detections):
            chosen = len(probe.detections) == 1 or i == preview.face
            color = (GOOD if ok else BAD) if chosen else (NEUTRAL if preview.face is not None else BAD)
            overlays.append(face_overlay(det, "", color, face if face is not None and det is face.detection else None))
        self.view.set_message("")
        self.view.set_frame(to_qimage(preview.image), overlays)
        self.crop.set_image(to_qimage(obs.aligned.image) if obs else None)
        self.verdict.setText(("\u2713 " if ok else "\u2717 ") + text)
        self.verdict.setStyleSheet(f"color: {(GOOD if ok else BAD).darker(115).name()};")
        if obs:
            q = obs.quality
            self.details.setText(
                f"{preview.source}: face {q.face_size:.0f} px (min {self.ctx.settings.min_face_size}), "
                f"brightness {q.brightness:.0f}, sharpness {q.sharpness:.0f} (min {self.ctx.settings.min_sharpness:g}), "
                f"detector {q.score:.2f}"
            )
            if face is not None:
                s = self.ctx.settings
                self.details.setText(
                    self.details.text() + f"; head {landmark_text(face)} "
                    f"(limits: turn {s.max_yaw_deg:g}\u00b0, tilt {s.max_pitch_deg:g}\u00b0, eyes {s.min_eye_aspect_ratio:g})"
                )
        else:
            self.details.setText(preview.source)
        tau = self.ctx.service.threshold
        self._similar = next((c for c in preview.nearest if c.distance <= tau and c.name != self._replace), None)
        self._show_similar()
        self._update_buttons()
        if ok and not self.name_edit.text():
            self.name_edit.setFocus()
        self.analysed.emit(preview)

    def _analyse_failed(self, exc: BaseException) -> None:
        self._busy = False
        self._preview = None
        self.view.clear(f"Cannot use this photo:\n{error_text(exc)}")
        self.verdict.setText("\u2717 " + error_text(exc))
        self.verdict.setStyleSheet(f"color: {BAD.darker(115).name()};")
        self._update_buttons()
        self.failed.emit(error_text(exc))

    def _show_similar(self) -> None:
        s = self._similar
        self.warning.setVisible(s is not None)
        self.anyway.setVisible(s is not None)
        self.anyway.setChecked(False)
        if s is not None:
            tau = self.ctx.service.threshold
            self.warning.setText(
                f"This face already matches {s.name} (distance {s.distance:.3f}, threshold {tau:.3f}). "
                "Is it the same person? Re-enroll them from People instead."
            )

    # -- saving -----------------------------------------------------------------------------
    def can_enroll(self) -> bool:
        p = self._preview
        usable = p is not None and p.probe.decision is None and p.probe.observation.quality.ok
        return (
            usable
            and not self._busy
            and bool(self.name_edit.text().strip())
            and (self._similar is None or self.anyway.isChecked())
            and self.ctx.ready
        )

    def _update_buttons(self, *_args) -> None:
        self.enroll_button.setEnabled(self.can_enroll())
        self.snap_button.setEnabled(self.ctx.ready)
        self.open_button.setEnabled(self.ctx.ready)

    def enroll(self) -> None:
        if not self.can_enroll():
            return
        name = self.name_edit.text().strip()
        self._busy = True
        self._update_buttons()
        self._say(f"Saving {name}...", None)
        service, image = self.ctx.service, self._preview.image
        force, replace, face = self.anyway.isChecked(), bool(self._replace), self._preview.face
        self.ctx.task(
            lambda: service.enroll(name, image, force=force, replace=replace, face=face),
            on_result=self._enrolled,
            on_error=self._enroll_failed,
            name="enroll",
        )

    def _enrolled(self, res) -> None:
        self._busy = False
        name = res.person.name
        verb = "Re-enrolled" if res.replaced else "Enrolled"
        self._say(f"\u2713 {verb} {name}.", GOOD)
        self._preview = None
        if not res.replaced:
            self.name_edit.clear()
        self.set_replace(None)
        self._update_buttons()
        self.ctx.people_changed.emit()
        self.ctx.events_changed.emit()
        self.enrolled.emit(name)

    def _enroll_failed(self, exc: BaseException) -> None:
        self._busy = False
        if isinstance(exc, AlreadyEnrolled):
            self._similar = Candidate(exc.name, exc.distance)
            self._show_similar()
            text = "Not saved: the face matches someone enrolled (see above)."
        elif isinstance(exc, DuplicatePerson):
            text = f"Not saved: {exc}"
        elif isinstance(exc, FaceRejected):
            text = f"Not saved: {exc}"
        else:
            text = f"Not saved: {error_text(exc)}"
        self._say(text, BAD)
        self._update_buttons()
        self.failed.emit(text)

    def _say(self, text: str, color) -> None:
        self.result.setText(text)
        self.result.setStyleSheet(f"color: {color.darker(115).name()}; font-weight: bold;" if color is not None else "")
