"""The Settings screen: values persist in the settings file and apply to the running app."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from faceapp.config import load_settings


def test_settings_are_saved_and_come_back_on_the_next_start(window, ctx, settings_file, tmp_path):
    from faceapp.gui.pages.settings import SettingsPage

    page = window.settings
    window.show_page(page)
    page.camera.setText(str(tmp_path / "door.avi"))
    page.use_calibrated.setChecked(False)
    page.threshold.setValue(0.13)  # stricter than calibrated: saved without a question (test_settings_threshold.py)
    page.device.setCurrentIndex(page.device.findData("cpu"))
    assert page.threads.value() == 0 and page.threads.text() == "every core"
    page.threads.setValue(1)
    page.frames.setValue(5)
    assert page.save()
    assert "Restart faceapp" in page.message.text()  # the threads apply to the networks loaded at the next start

    saved = load_settings(settings_file, env=False)
    assert (saved.camera, saved.threshold, saved.device, saved.door_frames) == (str(tmp_path / "door.avi"), 0.13, "cpu", 5)
    assert saved.threads == 1
    again = SettingsPage(ctx)
    assert again.camera.text() == str(tmp_path / "door.avi") and again.threshold.value() == 0.13
    assert again.frames.value() == 5 and not again.use_calibrated.isChecked() and again.threads.value() == 1
    assert ctx.engine.threshold == 0.13  # applied to the running app at once


def test_a_settings_change_is_an_event_of_the_access_log(qtbot, window, ctx, settings_file):
    page = window.settings
    window.show_page(page)
    page.frames.setValue(page.frames.value() + 2)
    assert page.save()
    qtbot.waitUntil(lambda: any(e.kind == "settings" for e in ctx.store.events()), timeout=10000)
    [event] = [e for e in ctx.store.events() if e.kind == "settings"]
    assert "door_frames" in event.detail and "->" in event.detail
    assert ctx.store.verify_events().ok


def test_the_threshold_shows_the_model_card_figures_or_says_uncalibrated(ctx):
    from faceapp.gui.pages.settings import model_card_text

    spec = dataclasses.replace(ctx.engine.spec, threshold=0.15)
    assert "UNCALIBRATED" in model_card_text(dataclasses.replace(spec, extra={}))
    card = {"calibration": {"far_target": 0.001, "tar_at_threshold": 0.9381, "genuine_pairs": 1067}}
    text = model_card_text(dataclasses.replace(spec, extra=card), 0.15)
    assert "1 stranger in 1,000" in text and "93.8%" in text and "1,067" in text
    assert "UNCALIBRATED" not in text and "in use" not in text
    assert "the threshold in use is 0.200" in model_card_text(dataclasses.replace(spec, extra=card), 0.2)


def test_a_calibration_curve_is_summarised_not_printed():
    """The shipped specs carry their whole FAR / TAR curve (hundreds of numbers): the page says
    what it is in one line instead of printing it."""
    from faceapp.embed.weights import load_spec
    from faceapp.gui.pages.settings import model_card_text

    spec = load_spec("dlib-resnet-v1")
    assert "curve" in spec.extra["calibration"]  # the case this is about
    text = model_card_text(spec)
    assert max(len(line) for line in text.splitlines()) < 300
    assert "curve: FAR and TAR at 150 thresholds from 0.01 to 1.5" in text
    assert "0.999063" not in text


def test_the_window_modules_do_not_load_torch_so_it_shows_at_once():
    code = (
        "import sys, faceapp.gui.app, faceapp.gui.window;"
        "bad = [m for m in ('torch', 'facenet_pytorch', 'sqlalchemy') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_landmark_and_liveness_settings_are_saved_checked_and_applied(window, ctx, settings_file):
    page = window.settings
    window.show_page(page)
    assert not page.liveness_time.isEnabled()  # liveness is off by default
    page.liveness.setChecked(True)
    page.liveness_time.setValue(7.0)
    page.liveness_turn.setValue(30.0)
    page.show_landmarks.setChecked(True)
    page.max_yaw.setValue(20.0)
    page.timeout.setValue(8.0)  # less than the challenge's 7 s + 2: refused, nothing written
    assert not page.save()
    assert "door_timeout_s" in page.message.text() and not settings_file.exists()
    page.timeout.setValue(10.0)
    assert page.save()
    saved = load_settings(settings_file, env=False)
    assert (saved.liveness, saved.liveness_time_limit_s, saved.liveness_turn_deg) == (True, 7.0, 30.0)
    assert (saved.show_landmarks, saved.max_yaw_deg, saved.enroll_check_landmarks) == (True, 20.0, True)
    assert ctx.analyzer.limits.max_yaw_deg == 20.0  # the running app's enrollment check
    assert window.door.machine.needs_landmarks  # the door was rebuilt with the challenge
    assert window.live.landmarks_box.isChecked()


def test_the_model_is_chosen_from_the_installed_ones_and_saved_for_the_next_start(window, ctx, settings_file):
    page = window.settings
    window.show_page(page)
    ids = [page.model.itemData(i) for i in range(page.model.count())]
    assert {"dlib-resnet-v1", "dlib-resnet-flip-v1", "compact-cnn-v1"} <= set(ids)
    assert page.model.currentData() == ctx.settings.model == "dlib-resnet-v1"
    assert "(default)" in page.model.currentText() and "98.83%" in page.model_note.text()
    page.use_calibrated.setChecked(False)
    page.threshold.setValue(0.3)  # a threshold set for dlib-resnet-v1 ...
    page.model.setCurrentIndex(page.model.findData("dlib-resnet-flip-v1"))
    assert page.use_calibrated.isChecked()  # ... is not carried over to another model
    assert "mirrored" in page.model_note.text() and "0.144" in page.model_note.text()
    assert page.save()
    saved = load_settings(settings_file, env=False)
    assert saved.model == "dlib-resnet-flip-v1" and saved.threshold is None
    assert "Restart faceapp" in page.message.text()
    assert ctx.engine.model_id == "dlib-resnet-v1"  # the running app keeps its model until restarted


def test_a_model_that_is_not_installed_is_shown_as_such(ctx):
    from faceapp.gui.pages.settings import SettingsPage

    ctx.settings = dataclasses.replace(ctx.settings, model="gone-v0")
    page = SettingsPage(ctx)
    assert page.model.currentData() == "gone-v0" and "not installed" in page.model.currentText()
    assert "not in" in page.model_note.text()


def test_after_a_model_change_the_app_re_encodes_the_enrolled_faces_before_deciding(
    qtbot, service, engine, analyzer, gui_settings, lfw_image
):
    """Enrolled with dlib-resnet-v1, started with dlib-resnet-flip-v1: the start re-encodes the
    stored faces (no one enrolls again), then the service verifies with the new model."""
    from faceapp.config import Settings
    from faceapp.gui.context import AppContext
    from faceapp.pipeline import FaceEngine
    from faceapp.types import Decision

    service.enroll("Colin_Powell", lfw_image("Colin_Powell", 1))
    service.enroll("Serena_Williams", lfw_image("Serena_Williams", 1))
    flip = FaceEngine(Settings(device="cpu", model="dlib-resnet-flip-v1"))
    flip._detector = engine.detector  # the same MTCNN; its own embedder (flip TTA)
    settings = dataclasses.replace(gui_settings, model="dlib-resnet-flip-v1")
    c = AppContext(settings, store=service.store, engine=flip, analyzer=analyzer)
    messages = []
    c.status.connect(messages.append)
    with qtbot.waitSignal(c.engine_ready, timeout=60_000):
        c.start()
        assert not c.ready  # nothing is decided while the templates are another model's
    try:
        assert c.reembedded == 2 and not c.reembed_error
        assert service.store.model_ids() == {"dlib-resnet-flip-v1": 2}
        assert any("Re-encoding 2 enrolled face(s)" in m for m in messages)
        assert "2 enrolled face(s) re-encoded" in messages[-1]
        r = c.service.verify("Colin_Powell", lfw_image("Colin_Powell", 2))
        assert r.decision is Decision.MATCH
    finally:
        assert c.shutdown()
