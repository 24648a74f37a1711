"""The Access log screen: filters by person, decision and date; CSV export of what is shown."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

import pytest
from PySide6.QtCore import QDate

from faceapp.types import Decision


@pytest.fixture
def log_page(window, ctx):
    now = datetime.now().astimezone()
    s = ctx.store
    s.log_event("door", decision=Decision.MATCH, decided="Alice", distance=0.1, threshold=0.2, time=now)
    s.log_event("door", decision=Decision.NOT_RECOGNIZED, distance=0.6, threshold=0.2, time=now - timedelta(minutes=5))
    s.log_event("door", decision=Decision.NO_MATCH, claimed="Alice", distance=0.5, threshold=0.2, time=now - timedelta(days=3))
    window.show_page(window.log)
    return window.log


def test_the_log_filters_by_person_and_by_decision(log_page):
    page = log_page
    assert page.model.rowCount() == 3
    page.person.setCurrentText("Alice")
    assert page.model.rowCount() == 2
    page.decision.setCurrentIndex(page.decision.findData(Decision.NO_MATCH))
    assert [e.decision for e in page.model.events()] == [Decision.NO_MATCH]


def test_the_log_filters_by_date(log_page):
    page = log_page
    page.since.setDate(QDate.currentDate())
    page.use_since.setChecked(True)
    assert {e.decision for e in page.model.events()} == {Decision.MATCH, Decision.NOT_RECOGNIZED}
    page.use_since.setChecked(False)
    page.until.setDate(QDate.currentDate().addDays(-1))
    page.use_until.setChecked(True)
    assert [e.decision for e in page.model.events()] == [Decision.NO_MATCH]


def test_export_csv_writes_the_events_shown(log_page, tmp_path):
    page = log_page
    page.decision.setCurrentIndex(page.decision.findData(Decision.MATCH))
    path = tmp_path / "events.csv"
    assert page.export_csv(str(path)) == 1
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [(r["decision"], r["decided"], float(r["distance"])) for r in rows] == [("match", "Alice", 0.1)]


def test_the_log_says_why_when_the_database_cannot_list_people(log_page, monkeypatch):
    """A database server gone while the Log page is opened (the kiosk's admin pages during an
    outage): the page says so instead of raising in a Qt slot; the list keeps 'anyone'."""
    from faceapp.errors import StoreError

    page = log_page

    def down(*_a, **_k):
        raise StoreError("cannot open database: connection refused")

    names = [page.person.itemText(i) for i in range(page.person.count())]
    monkeypatch.setattr(page.ctx.store, "list_people", down)
    monkeypatch.setattr(page.ctx.store, "events", down)
    page.activate()
    assert "connection refused" in page.count.text()  # not "0 events"
    assert [page.person.itemText(i) for i in range(page.person.count())] == names  # kept
    assert page.model.rowCount() == 0
