"""Access log: every decision, filterable by person, decision and date; export to CSV."""

from __future__ import annotations

import csv
from datetime import datetime, time, timedelta

from PySide6.QtCore import QDate
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from faceapp.gui import dialogs
from faceapp.gui.context import AppContext, error_text
from faceapp.gui.messages import DECISION_TEXT
from faceapp.gui.models import EventsModel
from faceapp.gui.pages.base import Page
from faceapp.types import Decision

ANYONE = "Anyone"


class LogPage(Page):
    title = "Access log"

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(ctx, parent)
        self.model = EventsModel(ctx.store, self)
        self.model.error.connect(lambda t: self._say(t, error=True))

        self.person = QComboBox()
        self.person.setEditable(True)
        self.person.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.person.setMinimumContentsLength(16)
        self.person.addItem(ANYONE)
        self.decision = QComboBox()
        self.decision.addItem("Any decision", None)
        for d in Decision:
            self.decision.addItem(DECISION_TEXT[d], d)
        today = QDate.currentDate()
        self.use_since = QCheckBox("&From")
        self.since = QDateEdit(today.addDays(-7))
        self.use_until = QCheckBox("&To")
        self.until = QDateEdit(today)
        for w in (self.since, self.until):
            w.setCalendarPopup(True)
            w.setDisplayFormat("yyyy-MM-dd")
        self.export_button = QPushButton("&Export CSV...")
        self.export_button.setToolTip("Save the events shown to a CSV file (Ctrl+E)")
        self.export_button.clicked.connect(self.export_dialog)

        for signal in (
            self.person.currentTextChanged,
            self.decision.currentIndexChanged,
            self.use_since.toggled,
            self.since.dateChanged,
            self.use_until.toggled,
            self.until.dateChanged,
        ):
            signal.connect(self.apply_filters)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.count = QLabel("")
        self.model.modelReset.connect(self._counted)

        filters = QHBoxLayout()
        filters.addWidget(QLabel("&Person:"))
        filters.itemAt(0).widget().setBuddy(self.person)
        filters.addWidget(self.person)
        filters.addWidget(self.decision)
        filters.addWidget(self.use_since)
        filters.addWidget(self.since)
        filters.addWidget(self.use_until)
        filters.addWidget(self.until)
        filters.addStretch(1)
        filters.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count)

        QShortcut(QKeySequence("Ctrl+E"), self, self.export_dialog)
        QShortcut(QKeySequence.StandardKey.Refresh, self, self.apply_filters)
        ctx.store_ready.connect(self._store_ready)
        ctx.events_changed.connect(self._events_changed)
        ctx.people_changed.connect(self._refresh_people)

    def _store_ready(self) -> None:
        self.model.store = self.ctx.store
        self._refresh_people()
        self.apply_filters()

    def activate(self) -> None:
        if self.ctx.store is not None:
            self._refresh_people()
            self.apply_filters()

    def _events_changed(self) -> None:
        if self.isVisible() and self.ctx.store is not None:
            self.apply_filters()

    def _refresh_people(self) -> None:
        if self.ctx.store is None:
            return
        try:
            names = [p.name for p in self.ctx.store.list_people()]
        except Exception as exc:  # e.g. the database server is unreachable: say so, keep the page
            self._say(error_text(exc), error=True)
            return
        current = self.person.currentText()
        self.person.blockSignals(True)
        self.person.clear()
        self.person.addItem(ANYONE)
        self.person.addItems(names)
        self.person.setCurrentText(current)
        self.person.blockSignals(False)

    def filters(self) -> dict:
        """The store.events() arguments the widgets describe (dates are local days)."""
        person = self.person.currentText().strip()
        out: dict = {
            "person": None if person in ("", ANYONE) else person,
            "decision": self.decision.currentData(),
            "since": None,
            "until": None,
        }
        if self.use_since.isChecked():
            out["since"] = _local_midnight(self.since.date())
        if self.use_until.isChecked():
            out["until"] = _local_midnight(self.until.date()) + timedelta(days=1)  # the whole day
        return out

    def apply_filters(self, *_args) -> None:
        if self.ctx.store is None:
            return
        self.model.store = self.ctx.store
        self.model.refresh(**self.filters())

    def _counted(self) -> None:
        if self.model.failed:
            self._say(self.model.failed, error=True)  # not "0 events": the log could not be read
            return
        n = self.model.rowCount()
        more = " (the newest; narrow the filters to see older ones)" if n >= self.model.limit else ""
        self._say(f"{n} event{'s' if n != 1 else ''}{more}")

    def _say(self, text: str, *, error: bool = False) -> None:
        self.count.setText(text)
        self.count.setStyleSheet("color: #c0392b;" if error else "")

    def export_dialog(self) -> None:
        path = dialogs.save_file(
            self, "Export the access log", "faceapp-events.csv", "CSV (*.csv)", protected=dialogs.database_files(self.ctx)
        )
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> int:
        """Write the events shown (with the filters in force) to ``path``; returns the count."""
        events = self.model.events()
        try:
            with open(path, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["time", "kind", "decision", "claimed", "decided", "distance", "threshold", "detail"])
                for e in events:
                    w.writerow([
                        e.time.isoformat(),
                        e.kind,
                        e.decision.value if e.decision else "",
                        e.claimed or "",
                        e.decided or "",
                        "" if e.distance is None else repr(e.distance),
                        "" if e.threshold is None else repr(e.threshold),
                        e.detail,
                    ])
        except OSError as exc:
            self._say(f"Export failed: {error_text(exc)}", error=True)
            return 0
        self._say(f"Exported {len(events)} events to {path}")
        return len(events)


def _local_midnight(d: QDate) -> datetime:
    return datetime.combine(d.toPython(), time(0, 0)).astimezone()
