"""People: everyone enrolled, with thumbnails; search, rename, re-enroll, remove, export/import;
the selected person's photos (templates), with add / remove photo."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from faceapp.errors import UnsignedArchive
from faceapp.gui import dialogs
from faceapp.gui.context import AppContext, error_text
from faceapp.gui.models import THUMB, PeopleModel
from faceapp.gui.pages.base import Page
from faceapp.gui.pages.enroll import PHOTO_FILTER
from faceapp.gui.widgets import jpeg_pixmap

GALLERY_FILTER = "faceapp gallery (*.zip);;All files (*)"
PHOTO_THUMB = 72  # pixels, the selected person's photos


class PeoplePage(Page):
    title = "People"

    reenroll_requested = Signal(str)
    removed = Signal(str)
    photo_added = Signal(str)  # the person's name
    photo_failed = Signal(str)  # why not

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(ctx, parent)
        self.model = PeopleModel(ctx.store, self)
        self.model.error.connect(self._error)
        self.model.renamed.connect(lambda old, new: (self._say(f"Renamed {old} to {new}."), ctx.people_changed.emit()))

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search names (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda text: self.model.refresh(text))
        self.count = QLabel("")

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked)  # F2: rename_selected
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(PeopleModel.PHOTO, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(PeopleModel.PHOTO, THUMB + 16)
        header.setSectionResizeMode(PeopleModel.NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(PeopleModel.TEMPLATES, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(PeopleModel.ENROLLED, QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.table.selectionModel().selectionChanged.connect(self._show_photos)
        self.model.modelReset.connect(self._after_reset)

        self.rename_button = QPushButton("Re&name")
        self.rename_button.setToolTip("Rename the selected person (F2)")
        self.rename_button.clicked.connect(self.rename_selected)
        self.reenroll_button = QPushButton("Re-en&roll...")
        self.reenroll_button.setToolTip("Replace the selected person's photo")
        self.reenroll_button.clicked.connect(self._reenroll)
        self.remove_button = QPushButton("Re&move...")
        self.remove_button.setToolTip("Remove the selected person and all of their data (Del)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.export_button = QPushButton("E&xport gallery...")
        self.export_button.clicked.connect(self.export_dialog)
        self.import_button = QPushButton("&Import gallery...")
        self.import_button.clicked.connect(self.import_dialog)
        self.message = QLabel("")
        self.message.setWordWrap(True)

        # the selected person's photos: verify and identify use the nearest of them
        self.photos = QListWidget()
        self.photos.setViewMode(QListView.ViewMode.IconMode)
        self.photos.setFlow(QListView.Flow.LeftToRight)
        self.photos.setWrapping(False)
        self.photos.setMovement(QListView.Movement.Static)
        self.photos.setIconSize(QSize(PHOTO_THUMB, PHOTO_THUMB))
        self.photos.setFixedHeight(PHOTO_THUMB + 44)
        self.photos.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.photos.itemSelectionChanged.connect(self._update_buttons)
        self.add_photo_button = QPushButton("&Add photo...")
        self.add_photo_button.setToolTip("Add another photo of the selected person (the nearest photo counts at the door)")
        self.add_photo_button.clicked.connect(self.add_photo_dialog)
        self.remove_photo_button = QPushButton("Remove &photo...")
        self.remove_photo_button.setToolTip("Remove the selected photo (not their only one: remove the person instead)")
        self.remove_photo_button.clicked.connect(self.remove_selected_photo)
        self.photos_box = QGroupBox("Photos")
        photo_buttons = QVBoxLayout()
        photo_buttons.addWidget(self.add_photo_button)
        photo_buttons.addWidget(self.remove_photo_button)
        photo_buttons.addStretch(1)
        photo_row = QHBoxLayout(self.photos_box)
        photo_row.addWidget(self.photos, 1)
        photo_row.addLayout(photo_buttons)
        self._adding = False

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.count)
        buttons = QHBoxLayout()
        for b in (self.rename_button, self.reenroll_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.photos_box)
        layout.addWidget(self.message)

        QShortcut(QKeySequence.StandardKey.Find, self, lambda: (self.search.setFocus(), self.search.selectAll()))
        QShortcut(QKeySequence(Qt.Key.Key_Delete), self.table, self.remove_selected)
        QShortcut(QKeySequence(Qt.Key.Key_F2), self.table, self.rename_selected)
        ctx.store_ready.connect(lambda: self.model.set_store(ctx.store))
        ctx.people_changed.connect(self._refresh_if_visible)
        self._update_buttons()

    # -- helpers ----------------------------------------------------------------------------
    def activate(self) -> None:
        if self.ctx.store is not None:
            self.model.refresh()
        self.table.setFocus()

    def _refresh_if_visible(self) -> None:
        if self.ctx.store is not None:
            self.model.refresh()

    def _after_reset(self) -> None:
        n = self.model.rowCount()
        self.count.setText(f"{n} {'person' if n == 1 else 'people'}" + (" found" if self.model.search else " enrolled"))
        self._show_photos()
        self._update_buttons()

    def _show_photos(self, *_args) -> None:
        """List the selected person's photos (their templates, oldest first)."""
        self.photos.clear()
        name = self.selected_name()
        self.photos_box.setTitle(f"Photos of {name}" if name else "Photos")
        if name and self.ctx.store is not None:
            try:
                templates = self.ctx.store.templates(person=name)
            except Exception as exc:
                self._error(f"Cannot show the photos: {error_text(exc)}")
                templates = []
            for i, t in enumerate(templates, 1):
                item = QListWidgetItem(QIcon(jpeg_pixmap(t.face_jpeg, PHOTO_THUMB)), f"{i}: {t.created_at:%Y-%m-%d}")
                item.setData(Qt.ItemDataRole.UserRole, t.id)
                item.setToolTip(f"Photo {i} of {len(templates)}, added {t.created_at:%Y-%m-%d %H:%M}")
                self.photos.addItem(item)
        self._update_buttons()

    def photo_ids(self) -> list[int]:
        """The template ids shown in the photo list, in order."""
        return [self.photos.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.photos.count())]

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            idx = self.table.currentIndex()
            if not idx.isValid():
                return None
            return self.model.person(idx.row()).name
        return self.model.person(rows[0].row()).name

    def select(self, name: str) -> bool:
        for row, n in enumerate(self.model.names()):
            if n == name:
                self.table.selectRow(row)
                return True
        return False

    def _update_buttons(self, *_args) -> None:
        has = self.selected_name() is not None
        for b in (self.rename_button, self.remove_button):
            b.setEnabled(has)
        self.reenroll_button.setEnabled(has and self.ctx.ready)
        self.add_photo_button.setEnabled(has and self.ctx.ready and not self._adding)
        self.remove_photo_button.setEnabled(
            has and self.photos.count() > 1 and bool(self.photos.selectedItems()) and not self._adding
        )

    def _say(self, text: str) -> None:
        self.message.setStyleSheet("")
        self.message.setText(text)

    def _error(self, text: str) -> None:
        self.message.setStyleSheet("color: #c0392b; font-weight: bold;")
        self.message.setText(text)

    # -- actions ----------------------------------------------------------------------------
    def rename_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            index = self.model.index(rows[0].row(), PeopleModel.NAME)
            self.table.setCurrentIndex(index)
            self.table.edit(index)

    def _reenroll(self) -> None:
        name = self.selected_name()
        if name:
            self.reenroll_requested.emit(name)

    def add_photo_dialog(self) -> None:
        if self.selected_name() is None:
            return
        path = dialogs.open_file(self, "Add a photo", PHOTO_FILTER, protected=dialogs.database_files(self.ctx))
        if path:
            self.add_photo_from(path)

    def add_photo_from(self, path: str) -> None:
        """Add the photo at ``path`` to the selected person (in a worker); refused like an
        enrollment when it has no usable face or the face matches someone else."""
        name, service = self.selected_name(), self.ctx.service
        if name is None or service is None:
            return
        self._adding = True
        self._update_buttons()
        self._say(f"Adding a photo to {name}...")

        def done(res) -> None:
            self._adding = False
            self._say(f"Added a photo to {res.person.name} ({res.person.template_count} photos)."
                      + (f" {res.warning}" if res.warning else ""))
            self._reselect(res.person.name)
            self.photo_added.emit(res.person.name)

        def failed(exc) -> None:
            self._adding = False
            text = f"Photo not added: {error_text(exc)}"
            self._error(text)
            self._update_buttons()
            self.photo_failed.emit(text)

        self.ctx.task(service.enroll, name, path, add=True, on_result=done, on_error=failed, name="add photo")

    def confirm_remove_photo(self, name: str) -> bool:
        return self._ask("Remove photo", f"Remove this photo of {name}?",
                         "Its face template and image are deleted; their other photos stay. This cannot be undone.",
                         "Remove", "Keep")

    def remove_selected_photo(self) -> None:
        name, items = self.selected_name(), self.photos.selectedItems()
        if not name or not items or self.photos.count() <= 1 or not self.confirm_remove_photo(name):
            return
        try:
            self.ctx.store.remove_template(items[0].data(Qt.ItemDataRole.UserRole))  # logs the removal itself
        except Exception as exc:
            self._error(f"Photo not removed: {error_text(exc)}")
            return
        self._reselect(name)
        self._say(f"Removed a photo of {name} ({self.photos.count()} left).")

    def _reselect(self, name: str) -> None:
        """After a change to ``name``'s photos: tell the other pages, refresh, keep them selected."""
        self.ctx.people_changed.emit()
        self.ctx.events_changed.emit()
        self.model.refresh()
        self.select(name)
        self._show_photos()

    def confirm_remove(self, name: str) -> bool:
        return self._ask("Remove person", f"Remove {name}?",
                         "Their face templates, photos and every logged event about them are deleted. This cannot be undone.",
                         "Remove", "Keep")

    def _ask(self, title: str, text: str, detail: str, yes: str, no: str) -> bool:
        """A warning that asks before something that cannot be undone; the safe answer (``no``)
        is the default button, so Enter never destroys anything."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(title)
        box.setText(text)
        box.setInformativeText(detail)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.Yes).setText(yes)
        box.button(QMessageBox.StandardButton.No).setText(no)
        return box.exec() == QMessageBox.StandardButton.Yes

    def remove_selected(self) -> None:
        name = self.selected_name()
        if not name or not self.confirm_remove(name):
            return
        try:
            if self.ctx.service is not None:
                n = self.ctx.service.remove(name)
            else:
                n = self.ctx.store.remove_person(name)  # logs the removal itself
        except Exception as exc:
            self._error(f"Not removed: {error_text(exc)}")
            return
        self.model.refresh()
        self._say(f"Removed {name} and all of their data ({n} template{'s' if n != 1 else ''}).")
        self.ctx.people_changed.emit()
        self.ctx.events_changed.emit()
        self.removed.emit(name)

    def export_dialog(self) -> None:
        path = dialogs.save_file(
            self, "Export the gallery", "faceapp-gallery.zip", GALLERY_FILTER, protected=dialogs.database_files(self.ctx)
        )
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        self._say("Exporting...")
        self.ctx.task(
            self.ctx.store.export_gallery,
            path,
            on_result=lambda r: self._say(export_message(r)),
            on_error=lambda e: self._error(f"Export failed: {error_text(e)}"),
            name="export",
        )

    def import_dialog(self) -> None:
        path = dialogs.open_file(self, "Import a gallery", GALLERY_FILTER, protected=dialogs.database_files(self.ctx))
        if path:
            self.import_from(path)

    def import_from(self, path: str, *, allow_unsigned: bool = False) -> None:
        self._say("Importing...")

        def done(r) -> None:
            self._say(import_message(r))
            self.model.refresh()
            self.ctx.people_changed.emit()

        def failed(e) -> None:
            if isinstance(e, UnsignedArchive) and not allow_unsigned and self.confirm_unsigned(path):
                self.import_from(path, allow_unsigned=True)
                return
            self._error(f"Import failed: {error_text(e)}")

        self.ctx.task(
            self.ctx.store.import_gallery,
            path,
            on_conflict="skip",
            allow_unsigned=allow_unsigned,
            on_result=done,
            on_error=failed,
            name="import",
        )

    def confirm_unsigned(self, path: str) -> bool:
        """Ask before importing a gallery that carries no signature."""
        return self._ask("Unsigned gallery",
                         f"{Path(path).name} is not signed, so nothing shows that it comes from a faceapp of this site.",
                         "Every face in it is still checked. Import it only if you trust where it came from.",
                         "Import anyway", "Cancel")


def export_message(r) -> str:
    """What the page says after an export (:class:`faceapp.store.repository.ExportResult`)."""
    text = f"Exported {r.people} people ({r.templates} templates) to {r.path}."
    left = tuple(getattr(r, "left_out", ()) or ())
    if left:
        names = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        text += f" Left out {len(left)} with no photo to be recognised by: {names}."
    return text


def import_message(r) -> str:
    """What the page says after an import (:class:`faceapp.store.repository.ImportResult`)."""
    text = f"Imported {r.added} new people ({r.templates} templates); {r.skipped} already enrolled were kept as they are."
    left = int(getattr(r, "left_out", 0) or 0)
    if left:
        text += f" {left} listed with no photo were left out."
    return text
