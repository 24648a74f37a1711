"""Qt table models over the store: the enrolled people and the event log."""

from __future__ import annotations

import logging
from datetime import datetime

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPixmap

from faceapp.gui.context import error_text
from faceapp.gui.messages import decision_text
from faceapp.gui.widgets import jpeg_pixmap
from faceapp.types import Decision, Event, Person

log = logging.getLogger(__name__)

THUMB = 56


def local_time(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class _ListTableModel(QAbstractTableModel):
    """A flat table over a Python list of rows with fixed column HEADERS."""

    HEADERS: tuple[str, ...] = ()

    def _rows(self) -> list:
        return []

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(self._rows())

    def columnCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None


class PeopleModel(_ListTableModel):
    """Everyone enrolled: photo, name (editable: renames), templates, enrolled on."""

    PHOTO, NAME, TEMPLATES, ENROLLED = range(4)
    HEADERS = ("Photo", "Name", "Templates", "Enrolled")
    error = Signal(str)  # a rename that the store refused
    renamed = Signal(str, str)

    def __init__(self, store=None, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self.search = ""
        self._people: list[Person] = []
        self._thumbs: dict[int, QPixmap] = {}

    def set_store(self, store) -> None:
        self.store = store
        self.refresh()

    def refresh(self, search: str | None = None) -> None:
        if search is not None:
            self.search = search
        self.beginResetModel()
        self._thumbs.clear()
        try:
            self._people = self.store.list_people(self.search or None) if self.store is not None else []
        except Exception as exc:
            self._people = []
            self.error.emit(error_text(exc))
        self.endResetModel()

    def person(self, row: int) -> Person:
        return self._people[row]

    def names(self) -> list[str]:
        return [p.name for p in self._people]

    # -- Qt model API -----------------------------------------------------------------------
    def _rows(self) -> list:
        return self._people

    def flags(self, index):
        f = super().flags(index)
        if index.column() == self.NAME:
            f |= Qt.ItemFlag.ItemIsEditable
        return f

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        p = self._people[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DecorationRole and col == self.PHOTO:
            return self._thumb(p)
        if role == Qt.ItemDataRole.SizeHintRole and col == self.PHOTO:
            return QSize(THUMB + 8, THUMB + 8)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == self.NAME:
                return p.name
            if col == self.TEMPLATES and role == Qt.ItemDataRole.DisplayRole:
                return str(p.template_count)
            if col == self.ENROLLED and role == Qt.ItemDataRole.DisplayRole:
                return local_time(p.created_at)
        if role == Qt.ItemDataRole.ToolTipRole and col == self.NAME:
            return "Double-click or F2 to rename"
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.EditRole or index.column() != self.NAME:
            return False
        old, new = self._people[index.row()].name, str(value).strip()
        if not new or new == old:
            return False
        try:
            person = self.store.rename_person(old, new)
        except Exception as exc:
            self.error.emit(error_text(exc))
            return False
        self._people[index.row()] = person
        self.dataChanged.emit(index, index)
        self.renamed.emit(old, person.name)
        return True

    def _thumb(self, p: Person) -> QPixmap | None:
        if p.id not in self._thumbs:
            pix = QPixmap()
            try:
                templates = self.store.templates(person=p.name)
                if templates:
                    pix = jpeg_pixmap(templates[-1].face_jpeg, THUMB)
            except Exception as exc:
                log.debug("no thumbnail for %s: %s", p.name, exc)
            self._thumbs[p.id] = pix
        pix = self._thumbs[p.id]
        return pix if not pix.isNull() else None


class EventsModel(_ListTableModel):
    """The event log, newest first, as filtered."""

    HEADERS = ("Time", "Kind", "Decision", "Claimed", "Decided", "Distance", "Threshold", "Detail")
    error = Signal(str)

    def __init__(self, store=None, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self._events: list[Event] = []
        self.filters: dict = {}
        self.limit = 10000
        self.failed: str | None = None

    def set_store(self, store) -> None:
        self.store = store
        self.refresh()

    def refresh(self, **filters) -> None:
        if filters:
            self.filters = filters
        self.beginResetModel()
        self.failed = None  # why the last refresh read nothing (a view shows it rather than "0 events")
        try:
            self._events = self.store.events(limit=self.limit, **self.filters) if self.store is not None else []
        except Exception as exc:
            self._events = []
            self.failed = error_text(exc)
            self.error.emit(self.failed)
        self.endResetModel()

    def events(self) -> list[Event]:
        return list(self._events)

    def _rows(self) -> list:
        return self._events

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        e = self._events[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.row_values(e)[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 2 and e.decision is not None:
            return QBrush(QColor("#1b8a3a") if e.decision is Decision.MATCH else QColor("#c0392b"))
        return None

    @staticmethod
    def row_values(e: Event) -> list[str]:
        return [
            local_time(e.time),
            e.kind,
            decision_text(e.decision),
            e.claimed or "",
            e.decided or "",
            "" if e.distance is None else f"{e.distance:.4f}",
            "" if e.threshold is None else f"{e.threshold:.4f}",
            e.detail,
        ]
