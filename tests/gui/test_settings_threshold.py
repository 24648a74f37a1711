"""The settings page's threshold guard rails: the FAR / TAR of the value being typed (from the
model's calibration curve), a warning past FAR 1e-2, and a confirmation before saving it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox


@pytest.fixture
def page(qtbot, qapp, sqlite_url, tmp_path):
    from faceapp.config import Settings
    from faceapp.gui.context import AppContext
    from faceapp.gui.pages.settings import SettingsPage
    from faceapp.storage import open_store

    store = open_store(sqlite_url)
    ctx = AppContext(Settings(device="cpu", db_url=sqlite_url, camera=str(tmp_path / "none.avi")),
                     store=store, settings_file=tmp_path / "settings.toml")
    p = SettingsPage(ctx)
    qtbot.addWidget(p)
    p.show()
    yield p
    assert ctx.shutdown()
    store.close()


def _answer(button):
    def press():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, press)
            return
        box.button(button).click()

    QTimer.singleShot(20, press)


def test_the_figures_follow_the_value_being_typed(page):
    assert page.use_calibrated.isChecked()
    assert page.risk.text().startswith("At 0.150: about 1 stranger in 1,000 (FAR 1.0e-03)")
    page.use_calibrated.setChecked(False)
    page.threshold.setValue(0.2)
    assert page.risk.text().startswith("At 0.200: about 1 stranger in 48 (FAR 2.1e-02)")
    assert "Warning: threshold 0.200 lets in" in page.risk.text()
    page.threshold.setValue(0.12)
    assert "Warning" not in page.risk.text() and "At 0.120:" in page.risk.text()


def test_a_loose_threshold_is_saved_only_after_a_confirmation(page):
    page.use_calibrated.setChecked(False)
    page.threshold.setValue(0.35)
    _answer(QMessageBox.StandardButton.Cancel)
    assert page.save() is False
    assert page.ctx.settings.threshold is None and not page.path.exists()
    assert page.message.text() == "Not saved: the threshold was not confirmed."
    _answer(QMessageBox.StandardButton.Save)
    assert page.save() is True
    assert page.ctx.settings.threshold == 0.35
    assert page.save() is True  # unchanged: no second question


def test_a_strict_threshold_is_saved_without_a_question(page):
    page.use_calibrated.setChecked(False)
    page.threshold.setValue(0.1)
    assert page.save() is True and page.ctx.settings.threshold == 0.1
