"""Settings: camera source, threshold (with what it means), CPU/GPU, face model, database,
door timing, landmarks and liveness.

Edits the settings file (``save_settings``), so they persist between runs. The camera, the
threshold and the door's timing apply at once; the database, device and model at the next start.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceapp import paths
from faceapp.config import Settings, save_settings, settings_path, shown
from faceapp.errors import ConfigError, WeightsError
from faceapp.gui import dialogs
from faceapp.gui.context import AppContext, error_text
from faceapp.gui.pages.base import Page
from faceapp.threshold_guard import FAR_WARN, ThresholdRisk, assess

log = logging.getLogger(__name__)

VIDEO_FILTER = "Videos (*.avi *.mp4 *.mkv *.mov *.webm);;All files (*)"
THRESHOLD_MEANING = (
    "A face counts as the enrolled person when the squared distance between the two faces' "
    "encodings is at most this value (0 = identical, 4 = opposite). Lower is stricter: fewer "
    "strangers get in (false accepts) but more enrolled people are turned away (false rejects)."
)


_FIGURE_LABELS = {
    "far_target": "false accept rate (FAR) it was set for",
    "far": "false accept rate (FAR)",
    "tar_at_threshold": "true accept rate (TAR) at the threshold",
    "tar": "true accept rate (TAR)",
    "frr": "false reject rate (FRR)",
    "eer": "equal error rate (EER)",
    "genuine_pairs": "same-person pairs measured",
    "impostor_pairs": "different-person pairs measured",
    "protocol": "measured on",
}
_SKIP = {"command", "threshold"}


def _figure(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_figure(v)}" for k, v in value.items())
    return str(value)


def _curve(curve: dict) -> str:
    """One line on a calibration curve (its thresholds, FARs and TARs are in the spec and the
    threshold's explanation above reads them), not its hundreds of numbers."""
    grid = curve.get("threshold")
    if not isinstance(grid, list) or not grid:
        return "present (see the model card)"
    return f"FAR and TAR at {len(grid)} thresholds from {_figure(float(grid[0]))} to {_figure(float(grid[-1]))} (in the model's spec)"


def model_card_text(spec, in_use: float | None = None) -> str:
    """What the model's spec says about its threshold: the calibration figures (under
    "metrics" or "calibration" in the spec's JSON), or that it is uncalibrated."""
    if spec is None:
        return "The model could not be read, so its calibration is unknown."
    extra = spec.extra or {}
    figures = extra.get("metrics") or extra.get("calibration")
    if not isinstance(figures, dict) or not figures:
        note = extra.get("threshold_note")
        return (
            f"Model {spec.model_id}: its threshold {spec.threshold:.3f} is UNCALIBRATED: the model card "
            "gives no measured error rates for it" + (f" ({note})." if note else ".")
        )
    lines = [f"Model {spec.model_id}: calibrated threshold {spec.threshold:.3f}."]
    far, tar = figures.get("far_target", figures.get("far")), figures.get("tar_at_threshold", figures.get("tar"))
    if isinstance(far, (int, float)) and isinstance(tar, (int, float)) and far > 0:
        lines.append(
            f"At that value about 1 stranger in {round(1 / far):,} is let in, and {tar:.1%} of the "
            "enrolled people's attempts are accepted."
        )
    for key, value in figures.items():
        if key == "curve" and isinstance(value, dict):
            lines.append(f"  curve: {_curve(value)}")
        elif key not in _SKIP:
            lines.append(f"  {_FIGURE_LABELS.get(key, key.replace('_', ' '))}: {_figure(value)}")
    if in_use is not None and abs(in_use - spec.threshold) > 1e-9:
        lines.append(f"These figures hold for {spec.threshold:.3f}; the threshold in use is {in_use:.3f}.")
    return "\n".join(lines)


def model_summary(spec) -> str:
    """One line on a model for people choosing it: the spec's ``summary``, else its card's title."""
    text = (spec.extra or {}).get("summary")
    if isinstance(text, str) and text.strip():
        return text.strip()
    try:
        first = spec.card.read_text(encoding="utf-8").splitlines()[0] if spec.card is not None else ""
    except OSError:
        first = ""
    title = first.lstrip("# ").split(": ", 1)[-1].strip()
    return title or f"{spec.architecture}, {spec.embedding_dim}-d encodings"


def _spin(box, low, high, suffix: str, tip: str = ""):
    """A spin box with its range (the setting's documented range) and unit."""
    box.setRange(low, high)
    box.setSuffix(suffix)
    if tip:
        box.setToolTip(tip)
    return box


def _buddy(text: str, widget: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(widget)
    return label


class SettingsPage(Page):
    title = "Settings"

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(ctx, parent)
        self.path = ctx.settings_file or settings_path()

        # camera
        self.camera = QLineEdit()
        self.camera.setPlaceholderText("0")
        self.camera.setToolTip("A device index (0 = the first webcam), a video file or a folder of images")
        video = QPushButton("Video file...")
        video.clicked.connect(self._pick_video)
        folder = QPushButton("Image folder...")
        folder.clicked.connect(self._pick_folder)
        cam_row = QHBoxLayout()
        cam_row.addWidget(self.camera, 1)
        cam_row.addWidget(video)
        cam_row.addWidget(folder)
        cam_box = QGroupBox("Camera")
        cf = QFormLayout(cam_box)
        cf.addRow(_buddy("&Source:", self.camera), cam_row)
        cf.addRow(QLabel("A device index (0 is the first webcam), a video file or a folder of images played as a camera."))

        # threshold
        self.use_calibrated = QCheckBox("Use the model's calibrated threshold")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 3.99)
        self.threshold.setDecimals(3)
        self.threshold.setSingleStep(0.01)
        self.use_calibrated.toggled.connect(lambda on: self.threshold.setEnabled(not on))
        meaning = QLabel(THRESHOLD_MEANING)
        meaning.setWordWrap(True)
        self.card = QLabel("")
        self.card.setWordWrap(True)
        self.card.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # what the value being typed means (the model's calibration curve), and a warning past FAR 1e-2
        self.risk = QLabel("")
        self.risk.setWordWrap(True)
        self.threshold.valueChanged.connect(lambda _v: self._show_risk())
        self.use_calibrated.toggled.connect(lambda _on: self._show_risk())
        th_box = QGroupBox("Decision threshold (tau)")
        tf = QFormLayout(th_box)
        tf.addRow(self.use_calibrated)
        tf.addRow("&Threshold:", self.threshold)
        tf.addRow(self.risk)
        tf.addRow(meaning)
        tf.addRow(self.card)

        # device + database
        self.device = QComboBox()
        self.device.addItem("Automatic (GPU when available)", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU (CUDA)", "cuda")
        self.model = QComboBox()
        self.model.setToolTip("The network that turns a face into its encoding; enrolled faces are re-encoded for it")
        self.model_note = QLabel("")
        self.model_note.setWordWrap(True)
        self.model.currentIndexChanged.connect(self._model_picked)
        self.db = QLineEdit()
        self.db.setToolTip("A SQLAlchemy URL, e.g. sqlite:///C:/faceapp/door.db; empty = the default")
        db_pick = QPushButton("Database file...")
        db_pick.clicked.connect(self._pick_db)
        db_row = QHBoxLayout()
        db_row.addWidget(self.db, 1)
        db_row.addWidget(db_pick)
        self.threads = _spin(QSpinBox(), 0, 256, "", "CPU threads for the networks; 0 = every core (the default). "
                             "Fewer leaves cores to other programs on a shared computer.")
        self.threads.setSpecialValueText("every core")
        sys_box = QGroupBox("Computer")
        sf = QFormLayout(sys_box)
        sf.addRow("&Run networks on:", self.device)
        sf.addRow("CPU &threads:", self.threads)
        sf.addRow("Face &model:", self.model)
        sf.addRow(self.model_note)
        sf.addRow(_buddy("&Database:", self.db), db_row)
        self.restart_note = QLabel(
            "Changes to the device, the threads, the model and the database apply after a restart. After a model "
            "change, the enrolled faces are re-encoded for the new model from their stored photos "
            "when faceapp starts (nobody has to enroll again)."
        )
        self.restart_note.setWordWrap(True)
        sf.addRow(self.restart_note)

        # door
        self.frames = _spin(QSpinBox(), 1, 30, " frames")
        self.timeout = _spin(QDoubleSpinBox(), 1.0, 120.0, " s")
        self.reset = _spin(QDoubleSpinBox(), 0.5, 60.0, " s")
        door_box = QGroupBox("Door")
        df = QFormLayout(door_box)
        df.addRow("Agreeing &frames for a decision:", self.frames)
        df.addRow("&Time limit for a decision:", self.timeout)
        df.addRow("Result shown &for:", self.reset)

        # landmarks: drawing, enrollment checks, the door's liveness challenge
        self.show_landmarks = QCheckBox("Draw the 68 landmarks and head pose in the live and door views")
        self.enroll_checks = QCheckBox("Enrollment: refuse photos with closed eyes or a turned head")
        self.max_yaw = _spin(QDoubleSpinBox(), 5.0, 90.0, " \u00b0", "Largest head turn left/right of a usable enrollment photo")
        self.liveness = QCheckBox("Door: ask for a liveness challenge (blink, or turn the head) before granting")
        self.liveness_time = _spin(QDoubleSpinBox(), 1.0, 60.0, " s")
        self.liveness_turn = _spin(QDoubleSpinBox(), 10.0, 45.0, " \u00b0",
                                   "How far a turn challenge must turn the head; higher is harder to fake and to pass")
        live_note = QLabel(
            "Liveness catches a photo or a screen held up and moved (its landmarks move as one plane). "
            "It has been measured against photo attacks only, not yet on live people at this door: "
            "try it with your users before relying on it (docs/landmarks.md)."
        )
        live_note.setWordWrap(True)
        lm_box = QGroupBox("Landmarks and liveness")
        lf = QFormLayout(lm_box)
        lf.addRow(self.show_landmarks)
        lf.addRow(self.enroll_checks)
        lf.addRow("Largest head &turn for enrollment:", self.max_yaw)
        lf.addRow(self.liveness)
        lf.addRow("Time to meet the &challenge:", self.liveness_time)
        lf.addRow("Turn challenge &angle:", self.liveness_turn)
        lf.addRow(live_note)
        self.liveness.toggled.connect(lambda on: (self.liveness_time.setEnabled(on), self.liveness_turn.setEnabled(on)))
        self.enroll_checks.toggled.connect(self.max_yaw.setEnabled)

        self.save_button = QPushButton("&Save")
        self.save_button.setToolTip("Save the settings (Ctrl+S)")
        self.save_button.clicked.connect(self.save)
        self.revert_button = QPushButton("Re&vert")
        self.revert_button.clicked.connect(self.load)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.message, 1)

        inner = QWidget()
        il = QVBoxLayout(inner)
        for box in (cam_box, th_box, sys_box, door_box, lm_box):
            il.addWidget(box)
        il.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(QLabel(f"Settings file: {self.path}"))
        layout.addLayout(buttons)

        QShortcut(QKeySequence.StandardKey.Save, self, self.save)
        ctx.engine_ready.connect(self._show_card)
        self.load()

    def activate(self) -> None:
        self.load()

    # -- settings <-> widgets -------------------------------------------------------------------
    def load(self) -> None:
        """Fill the widgets with the settings in use (the settings file's, unless the command
        line or the environment overrode some)."""
        s = self.ctx.settings
        self.saved = s
        self.camera.setText(str(s.camera))
        mine = s.threshold_for(s.model)  # a threshold set for another model is not this one's
        self.use_calibrated.setChecked(mine is None)
        self.threshold.setEnabled(mine is not None)
        self.threshold.setValue(mine if mine is not None else self._spec_threshold())
        i = self.device.findData(s.device if s.device in ("auto", "cpu", "cuda") else "cuda")
        self.device.setCurrentIndex(max(0, i))
        self.threads.setValue(s.threads)
        self._fill_models(s.model)
        self.db.setText(s.db_url)
        self.db.setPlaceholderText(f"default: {paths.default_db_url()}")
        self.frames.setValue(s.door_frames)
        self.timeout.setValue(s.door_timeout_s)
        self.reset.setValue(s.door_reset_s)
        self.show_landmarks.setChecked(s.show_landmarks)
        self.enroll_checks.setChecked(s.enroll_check_landmarks)
        self.max_yaw.setValue(s.max_yaw_deg)
        self.max_yaw.setEnabled(s.enroll_check_landmarks)
        self.liveness.setChecked(s.liveness)
        self.liveness_time.setValue(s.liveness_time_limit_s)
        self.liveness_turn.setValue(s.liveness_turn_deg)
        for w in (self.liveness_time, self.liveness_turn):
            w.setEnabled(s.liveness)
        self._show_card()

    def edited(self) -> Settings:
        """The settings in use with the widgets' changes (ConfigError if invalid)."""
        return dataclasses.replace(
            self.saved,
            camera=self.camera.text().strip() or "0",
            threshold=None if self.use_calibrated.isChecked() else round(self.threshold.value(), 4),
            threshold_model=None,  # the threshold shown is for the model picked beside it
            device=self.device.currentData(),
            threads=self.threads.value(),
            model=self.model.currentData() or self.saved.model,
            db_url=self.db.text().strip(),
            door_frames=self.frames.value(),
            door_timeout_s=self.timeout.value(),
            door_reset_s=self.reset.value(),
            show_landmarks=self.show_landmarks.isChecked(),
            enroll_check_landmarks=self.enroll_checks.isChecked(),
            max_yaw_deg=self.max_yaw.value(),
            liveness=self.liveness.isChecked(),
            liveness_time_limit_s=self.liveness_time.value(),
            liveness_turn_deg=self.liveness_turn.value(),
        ).validate()

    def save(self) -> bool:
        try:
            new = self.edited()
        except ConfigError as exc:
            self._say(f"Not saved: {error_text(exc)}", error=True)
            return False
        risk = self.threshold_risk()
        if new.threshold is not None and new.threshold != self.saved.threshold and risk is not None and risk.risky:
            if not self.confirm_risky(risk):
                self._say("Not saved: the threshold was not confirmed.", error=True)
                return False
        try:
            save_settings(new, self.path)
        except (ConfigError, OSError) as exc:
            self._say(f"Not saved: {error_text(exc)}", error=True)
            return False
        restart = (new.device, new.threads, new.db_url, new.model) != (self.saved.device, self.saved.threads,
                                                                      self.saved.db_url, self.saved.model)
        self._log_change(self.saved, new)
        self.saved = new
        self.ctx.apply_settings(new)
        self._show_card()
        self._say("Saved." + (" Restart faceapp for the device, threads, model and database changes." if restart else ""))
        return True

    # -- helpers ----------------------------------------------------------------------------
    def _log_change(self, old: Settings, new: Settings) -> None:
        """A settings change is an event of the access log (written off the UI thread)."""
        import dataclasses

        changes = [
            f"{f.name} {shown(f.name, getattr(old, f.name))!r} -> {shown(f.name, getattr(new, f.name))!r}"
            for f in dataclasses.fields(Settings)
            if getattr(old, f.name) != getattr(new, f.name)
        ]
        if not changes or self.ctx.store is None:
            return
        self.ctx.task(
            self.ctx.store.log_event, "settings", detail="changed: " + "; ".join(changes),
            on_result=lambda _e: self.ctx.events_changed.emit(),
            on_error=lambda e: self._say(f"Saved, but the change could not be logged: {error_text(e)}", error=True),
            name="log settings change",
        )

    def _fill_models(self, current: str) -> None:
        """Every model spec in the models folder (the one in use first if it is missing)."""
        from faceapp.embed.weights import available_specs

        self._specs = available_specs()
        self.model.blockSignals(True)
        self.model.clear()
        if current not in self._specs:
            self.model.addItem(f"{current} (not installed)", current)
        for model_id in sorted(self._specs):
            default = " (default)" if model_id == Settings().model else ""
            self.model.addItem(model_id + default, model_id)
        self.model.setCurrentIndex(max(0, self.model.findData(current)))
        self.model.blockSignals(False)
        self._model_picked()

    def _model_picked(self, _index: int = -1) -> None:
        model_id = self.model.currentData()
        spec = getattr(self, "_specs", {}).get(model_id)
        if spec is None:
            self.model_note.setText(f"Model {model_id} is not in {paths.models_dir()}: pick another one.")
            return
        note = model_summary(spec)
        if model_id != self.saved.model:
            note += f" Its own calibrated threshold ({spec.threshold:.3f}) will be used: a threshold set for another model does not carry over."
            self.use_calibrated.setChecked(True)
        self.model_note.setText(note)

    def _spec(self):
        if self.ctx.engine is not None:
            return self.ctx.engine.spec
        try:
            from faceapp.embed.weights import load_spec

            return load_spec(self.ctx.settings.model)
        except WeightsError as exc:
            log.debug("no spec: %s", exc)
            return None

    def _spec_threshold(self) -> float:
        spec = self._spec()
        return float(spec.threshold) if spec is not None else 0.36

    def _show_card(self) -> None:
        spec = self._spec()
        in_use = self.ctx.engine.threshold if self.ctx.engine is not None else None
        self.card.setText(model_card_text(spec, in_use))
        if self.use_calibrated.isChecked() and spec is not None:
            self.threshold.setValue(spec.threshold)
        self._show_risk()

    def threshold_risk(self) -> ThresholdRisk | None:
        """What the threshold in the widgets means for the model (None when its spec is unknown)."""
        spec = self._spec()
        if spec is None:
            return None
        value = spec.threshold if self.use_calibrated.isChecked() else round(self.threshold.value(), 4)
        return assess(spec, value)

    def _show_risk(self) -> None:
        risk = self.threshold_risk()
        if risk is None:
            self.risk.setText("")
            return
        if risk.risky:
            self.risk.setText(f"{risk.figures()}\nWarning: {risk.warning()}. Saving it asks for a confirmation.")
            self.risk.setStyleSheet("color: #b00020; font-weight: bold;")
        else:
            self.risk.setText(risk.figures())
            self.risk.setStyleSheet("")

    def confirm_risky(self, risk: ThresholdRisk) -> bool:
        """Ask before saving a threshold past FAR 1e-2 (True: save it anyway)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("A loose threshold")
        box.setText(f"Use threshold {risk.threshold:.3f}?")
        box.setInformativeText(
            f"{risk.figures()}\n\nThat is more than 1 stranger in {round(1 / FAR_WARN)} let in "
            f"as an enrolled person. The model's calibrated value is {risk.calibrated:.3f}."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.confirm_box = box
        try:
            return box.exec() == QMessageBox.StandardButton.Save
        finally:
            self.confirm_box = None
            box.deleteLater()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c0392b; font-weight: bold;" if error else "color: #1b8a3a;")

    def _pick_video(self) -> None:
        path = dialogs.open_file(
            self, "A video to use as the camera", VIDEO_FILTER, protected=dialogs.database_files(self.ctx)
        )
        if path:
            self.camera.setText(path)

    def _pick_folder(self) -> None:
        path = dialogs.existing_folder(self, "A folder of images to use as the camera")
        if path:
            self.camera.setText(path)

    def _pick_db(self) -> None:
        path = dialogs.save_file(  # picking the database itself is the point; its -wal / -shm are not databases
            self, "Database file", "faceapp.db", "SQLite database (*.db);;All files (*)",
            protected=dialogs.database_files(self.ctx, include_database=False), confirm_overwrite=False,
        )
        if path:
            self.db.setText(f"sqlite:///{Path(path).as_posix()}")
