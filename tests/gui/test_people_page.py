"""The People screen: a table model over the store; search, rename, remove (confirmed), export/import."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from faceapp.imageio import encode_jpeg


def _add(store, name, model_id, seed):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=128).astype(np.float32)
    face = np.full((150, 150, 3), 40 * seed % 255, np.uint8)
    store.add_person(name, embedding=emb / np.linalg.norm(emb), model_id=model_id, quality=50.0, face_jpeg=encode_jpeg(face))


@pytest.fixture
def people(window, ctx):
    for i, name in enumerate(["Alice Martin", "Bob Stone", "Alina Kay"]):
        _add(ctx.store, name, ctx.engine.model_id, i + 1)
    window.show_page(window.people)
    return window.people


def _answer_next_dialog(qtbot, button_text: str) -> None:
    """Click ``button_text`` in the next modal message box (it blocks the test's thread)."""

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        [button] = [b for b in box.buttons() if b.text() == button_text]
        button.click()

    QTimer.singleShot(0, click)


def test_the_table_lists_everyone_with_a_thumbnail_and_search_filters_it(people):
    model = people.model
    assert model.names() == ["Alice Martin", "Alina Kay", "Bob Stone"]
    thumb = model.data(model.index(0, model.PHOTO), Qt.ItemDataRole.DecorationRole)
    assert thumb is not None and thumb.width() > 0
    people.search.setText("ali")
    assert model.names() == ["Alice Martin", "Alina Kay"]


def test_removal_asks_for_confirmation_and_then_removes_all_their_data(qtbot, people, ctx):
    ctx.store.log_event("door", decided="Bob Stone", detail="test")
    assert people.select("Bob Stone")

    _answer_next_dialog(qtbot, "Keep")
    people.remove_selected()
    assert ctx.store.has_person("Bob Stone")

    _answer_next_dialog(qtbot, "Remove")
    people.remove_selected()
    assert not ctx.store.has_person("Bob Stone")
    assert ctx.store.templates(model_id=ctx.engine.model_id) and all(
        t.person_name != "Bob Stone" for t in ctx.store.templates()
    )
    # the biometric data is gone; the log keeps what happened, the removal included
    assert [e.kind for e in ctx.store.events(person="Bob Stone")] == ["remove", "door"]
    assert "Bob Stone" not in people.model.names()


def test_renaming_in_the_table_renames_in_the_store(people, ctx):
    model = people.model
    assert model.setData(model.index(0, model.NAME), "Alice Moreau")
    assert ctx.store.has_person("Alice Moreau") and not ctx.store.has_person("Alice Martin")
    assert not model.setData(model.index(1, model.NAME), "Bob Stone")  # taken: refused, shown
    assert "already enrolled" in people.message.text()


def test_export_then_import_brings_people_back(qtbot, people, ctx, tmp_path):
    archive = tmp_path / "gallery.zip"
    people.export_to(str(archive))
    qtbot.waitUntil(lambda: "Exported 3 people" in people.message.text(), timeout=10000)
    ctx.store.remove_person("Alina Kay")
    people.import_from(str(archive))
    qtbot.waitUntil(lambda: people.message.text().startswith("Imported"), timeout=10000)
    assert "Imported 1 new people" in people.message.text()
    assert ctx.store.has_person("Alina Kay")
    assert "Alina Kay" in people.model.names()


def test_an_unsigned_gallery_is_imported_only_after_the_admin_confirms(qtbot, people, ctx, tmp_path):
    import zipfile

    signed = tmp_path / "gallery.zip"
    people.export_to(str(signed))
    qtbot.waitUntil(lambda: "Exported 3 people" in people.message.text(), timeout=10000)
    unsigned = tmp_path / "unsigned.zip"
    with zipfile.ZipFile(signed) as zin, zipfile.ZipFile(unsigned, "w") as zout:
        for item in zin.infolist():
            if item.filename != "signature.json":
                zout.writestr(item, zin.read(item.filename))
    ctx.store.remove_person("Alina Kay")

    _answer_next_dialog(qtbot, "Cancel")
    people.import_from(str(unsigned))
    qtbot.waitUntil(lambda: people.message.text().startswith("Import failed"), timeout=10000)
    assert "not signed" in people.message.text() and not ctx.store.has_person("Alina Kay")

    _answer_next_dialog(qtbot, "Import anyway")
    people.import_from(str(unsigned))
    qtbot.waitUntil(lambda: people.message.text().startswith("Imported"), timeout=10000)
    assert ctx.store.has_person("Alina Kay")
    assert "UNSIGNED" in ctx.store.events(limit=1)[0].detail


@pytest.mark.datasets
def test_photos_of_the_selected_person_can_be_added_and_removed_but_not_the_last(qtbot, window, ctx, service, lfw_image):
    service.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
    service.enroll("George Bush", lfw_image("George_W_Bush", 1))
    people = window.people
    window.show_page(people)
    assert people.select("Colin Powell")
    assert people.photos.count() == 1 and not people.remove_photo_button.isEnabled()
    assert people.add_photo_button.isEnabled()

    with qtbot.waitSignal(people.photo_failed, timeout=60000) as blocker:  # George Bush's face is not Colin Powell
        people.add_photo_from(str(lfw_image("George_W_Bush", 2)))
    assert "George Bush" in blocker.args[0] and people.photos.count() == 1

    with qtbot.waitSignal(people.photo_added, timeout=60000):
        people.add_photo_from(str(lfw_image("Colin_Powell", 2)))
    assert people.selected_name() == "Colin Powell"
    assert people.photos.count() == 2 and ctx.store.get_person("Colin Powell").template_count == 2
    assert not people.photos.item(1).icon().isNull()
    assert people.photo_ids() == [t.id for t in ctx.store.templates(person="Colin Powell")]

    first = people.photo_ids()[0]
    people.photos.setCurrentRow(0)
    assert people.remove_photo_button.isEnabled()
    _answer_next_dialog(qtbot, "Keep")
    people.remove_selected_photo()
    assert ctx.store.get_person("Colin Powell").template_count == 2
    _answer_next_dialog(qtbot, "Remove")
    people.remove_selected_photo()
    assert people.selected_name() == "Colin Powell" and first not in people.photo_ids()
    assert people.photos.count() == 1 and ctx.store.get_person("Colin Powell").template_count == 1
    assert ctx.store.events(person="Colin Powell")[0].kind == "remove"
    people.photos.setCurrentRow(0)
    assert not people.remove_photo_button.isEnabled()  # the last photo: remove the person instead


@pytest.mark.datasets
def test_re_enroll_opens_the_enroll_page_clean(qtbot, window, service, lfw_image):
    service.enroll("Colin Powell", lfw_image("Colin_Powell", 1))
    page = window.enroll
    window.show_page(page)
    page.name_edit.setText("Another Name")
    with qtbot.waitSignal(page.analysed, timeout=60000):
        page.load_file(lfw_image("Colin_Powell", 2))
    assert page.warning.isVisible() and page.crop.pixmap() is not None and not page.crop.pixmap().isNull()

    window.show_page(window.people)
    assert window.people.select("Colin Powell")
    window.people.reenroll_button.click()
    assert window.current_page() is page
    assert not page.warning.isVisible() and not page.anyway.isVisible()
    assert page.crop.pixmap() is None or page.crop.pixmap().isNull()
    assert page.details.text() == "" and not page.enroll_button.isEnabled()
    assert page.name_edit.text() == "Colin Powell" and page.name_edit.isReadOnly()


def test_the_export_and_import_messages_name_the_people_left_out(tmp_path):
    """People with no template are not exported (nothing to recognise them by) and are skipped
    on import: the page says so instead of a count that silently does not add up."""
    from faceapp.gui.pages.people import export_message, import_message
    from faceapp.store.repository import ExportResult, ImportResult

    r = ExportResult(tmp_path / "g.zip", 3, 4, left_out=("Ann", "Bo"))
    assert export_message(r).endswith("Left out 2 with no photo to be recognised by: Ann, Bo.")
    assert "Left out" not in export_message(ExportResult(tmp_path / "g.zip", 3, 4))
    assert import_message(ImportResult(1, 0, 2, 3, left_out=1)).endswith("1 listed with no photo were left out.")
    assert "left out" not in import_message(ImportResult(1, 0, 2, 3))
