"""The Enroll screen: one photo -> the detected face, the aligned crop and a quality verdict -> saved."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceapp.imageio import load_image

pytestmark = pytest.mark.datasets


def _analyse(qtbot, page, path):
    with qtbot.waitSignal(page.analysed, timeout=60000) as blocker:
        page.load_file(path)
    return blocker.args[0]


def test_enrolling_from_a_photo_file(qtbot, window, ctx, lfw_image):
    page = window.enroll
    window.show_page(page)
    _analyse(qtbot, page, lfw_image("Colin_Powell", 1))
    assert page.verdict.text().startswith("\u2713")
    assert page.crop.pixmap() is not None and not page.crop.pixmap().isNull()
    assert not page.enroll_button.isEnabled()  # no name yet
    qtbot.keyClicks(page.name_edit, "Colin Powell")
    with qtbot.waitSignal(page.enrolled, timeout=60000) as blocker:
        qtbot.mouseClick(page.enroll_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    assert blocker.args == ["Colin Powell"]
    assert ctx.store.get_person("Colin Powell").template_count == 1


def _variants(photo, other):
    small = cv2.resize(photo, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)
    return {
        "no face": np.full((300, 400, 3), 120, np.uint8),
        "several faces": np.concatenate([photo, other], axis=1),
        "too small": small,
        "too dark": (photo * 0.25).astype(np.uint8),
        "blurry": cv2.GaussianBlur(photo, (0, 0), 2.5),
    }


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("no face", "No face found"),
        ("several faces", "2 faces in the photo"),
        ("too small", "too small"),
        ("too dark", "too dark"),
        ("blurry", "blurry"),
    ],
)
def test_each_poor_photo_gets_its_verdict_and_cannot_be_enrolled(qtbot, window, lfw_image, tmp_path, variant, expected,
                                                                  engine, monkeypatch):
    if variant == "too dark":  # a dim face is brightened before the gate (brightness_normalize): judge it as it is
        import dataclasses

        monkeypatch.setattr(engine, "limits", dataclasses.replace(engine.limits, normalize=False))
    photo = load_image(lfw_image("Colin_Powell", 1))
    other = load_image(lfw_image("Serena_Williams", 1))
    path = tmp_path / f"{variant.replace(' ', '_')}.png"
    cv2.imwrite(str(path), cv2.cvtColor(_variants(photo, other)[variant], cv2.COLOR_RGB2BGR))
    page = window.enroll
    window.show_page(page)
    page.name_edit.setText("Someone")
    _analyse(qtbot, page, path)
    assert page.verdict.text().startswith("\u2717")
    assert expected in page.verdict.text()
    assert not page.enroll_button.isEnabled()


def test_a_face_that_already_matches_someone_is_flagged_before_saving(qtbot, window, service, lfw_image):
    service.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
    page = window.enroll
    window.show_page(page)
    page.name_edit.setText("Another Name")
    _analyse(qtbot, page, lfw_image("Colin_Powell", 2))
    assert page.warning.isVisible() and "Colin Powell" in page.warning.text()
    assert not page.enroll_button.isEnabled()
    page.anyway.setChecked(True)
    assert page.enroll_button.isEnabled()


def test_a_camera_snapshot_after_the_countdown_is_checked_like_a_photo(qtbot, window, ctx, lfw_image, make_video, monkeypatch):
    import faceapp.gui.pages.enroll as enroll_module

    monkeypatch.setattr(enroll_module, "COUNTDOWN_S", 1)
    page = window.enroll
    window.show_page(page)
    ctx.apply_settings(ctx.settings.replace(camera=str(make_video(lfw_image("Colin_Powell", 1), frames=100))))
    qtbot.waitUntil(lambda: ctx.camera.last is not None, timeout=30000)
    with qtbot.waitSignal(page.analysed, timeout=30000) as blocker:
        page.take_snapshot()
        assert page.view._big == "1"  # the countdown is on screen
    assert blocker.args[0].source == "camera snapshot"
    assert page.verdict.text().startswith("\u2713")


def test_a_photo_with_the_head_turned_is_refused_with_its_reason_and_the_pose(qtbot, window, lfw_image):
    page = window.enroll
    window.show_page(page)
    page.name_edit.setText("Tony Blair")
    preview = _analyse(qtbot, page, lfw_image("Tony_Blair", 1))  # looks 30 degrees to the side
    assert page.verdict.text() == "\u2717 The head is turned: use a photo looking straight at the camera"
    assert not page.enroll_button.isEnabled()
    assert "yaw -3" in page.details.text() and "limits: turn 25" in page.details.text()
    assert np.asarray(page.view._overlays[0].points).shape == (68, 2)  # the 68 points are drawn
    assert preview.probe.landmarks is not None


def test_one_face_of_a_group_photo_is_enrolled_by_clicking_it(qtbot, window, ctx, lfw_image, tmp_path):
    """Issue 14 item 7: a photo of two people is not refused outright: the admin clicks one face."""
    page = window.enroll
    window.show_page(page)
    powell = load_image(lfw_image("Colin_Powell", 1))
    bush = load_image(lfw_image("George_W_Bush", 1))
    group = tmp_path / "group.png"
    cv2.imwrite(str(group), cv2.cvtColor(np.concatenate([powell, bush], axis=1), cv2.COLOR_RGB2BGR))
    preview = _analyse(qtbot, page, group)
    assert "click the face" in page.verdict.text() and not page.enroll_button.isEnabled()
    right = max(range(len(preview.probe.detections)), key=lambda i: preview.probe.detections[i].bbox.x1)
    box = preview.probe.detections[right].bbox
    with qtbot.waitSignal(page.analysed, timeout=60000) as blocker:
        page.view.clicked.emit((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2)
    chosen = blocker.args[0]
    assert chosen.face == right and chosen.probe.observation is not None
    assert page.verdict.text().startswith("\u2713")
    qtbot.keyClicks(page.name_edit, "George W Bush")
    with qtbot.waitSignal(page.enrolled, timeout=60000):
        page.enroll()
    # the template is the clicked face: Bush's other photo verifies, Powell's does not
    assert ctx.service.verify("George W Bush", lfw_image("George_W_Bush", 2)).granted
    assert not ctx.service.verify("George W Bush", lfw_image("Colin_Powell", 2)).granted
