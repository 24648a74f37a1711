"""A door that outlives its server: a local gallery snapshot and a durable queue of decisions.

A door on a shared PostgreSQL server keeps, in its own data folder, one SQLite file
(``door-cache.db``, 0600 like every faceapp database) holding

- a **snapshot** of the server's people and templates, copied as they are stored: sealed with
  the site key, so the file is protected exactly as the server's database is (a copy of it
  alone shows no face); taken whenever the gallery changes (:meth:`OfflineCache.refresh`);
- an **outbox**: each decision the door could not log on the server, written here and
  committed (fsync) *before* the door acts on it (:meth:`OfflineCache.enqueue`), with a
  unique id.

When the server answers again, :meth:`OfflineCache.deliver` logs the queued decisions in
order, each with its id and its original time; the server refuses a second event with the same
id, so a delivery interrupted by a crash and repeated logs nothing twice (exactly once), and a
queued decision is removed from the outbox only after the server has committed it.
A door started while its server is down decides from its snapshot; with no snapshot it refuses
to start (:class:`~faceapp.errors.StoreError`). :func:`open_door_store` opens a door's store
and cache this way; the headless door and the kiosk both use it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from faceapp.errors import StoreError
from faceapp.store.crypto import SiteKey
from faceapp.store.repository import Gallery, ModelFacts, Store
from faceapp.types import Decision

log = logging.getLogger(__name__)

CACHE_FILE = "door-cache.db"

_OUTBOX = """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL
)"""
_SNAPSHOT = "CREATE TABLE IF NOT EXISTS snapshot_info (id INTEGER PRIMARY KEY CHECK (id = 1), " \
            "server TEXT NOT NULL, generation TEXT NOT NULL, taken_at TEXT NOT NULL)"


@dataclass(frozen=True)
class Queued:
    """One decision waiting in the outbox."""

    uid: str
    kind: str
    fields: dict[str, Any]


class OfflineCache:
    """The door's local snapshot and outbox in ``folder`` (sealed with ``site_key``)."""

    def __init__(self, folder: str | Path, *, site_key: SiteKey, models: dict[str, ModelFacts] | None = None) -> None:
        self.path = Path(folder) / CACHE_FILE
        self.store = Store(f"sqlite:///{self.path}", site_key=site_key, models=models)
        engine = self.store.engine

        @event.listens_for(engine, "connect")
        def _durable(dbapi_connection, _record) -> None:  # an acknowledged enqueue survives power loss
            dbapi_connection.execute("PRAGMA synchronous = FULL")

        engine.dispose()  # connections opened before the listener reopen with it
        with engine.begin() as conn:
            conn.exec_driver_sql(_OUTBOX)
            conn.exec_driver_sql(_SNAPSHOT)

    def close(self) -> None:
        self.store.close()

    # -- the snapshot ---------------------------------------------------------------------
    def refresh(self, server: Store) -> int:
        """Copy the server's people and templates (sealed, as stored) into the snapshot, in one
        transaction; returns the number of templates. The server must seal with this site key."""
        snap = server.sealed_snapshot()
        n = self.store.replace_with_snapshot(snap)
        with self.store.engine.begin() as conn:
            conn.execute(text("INSERT OR REPLACE INTO snapshot_info (id, server, generation, taken_at) "
                              "VALUES (1, :s, :g, :t)"),
                         {"s": server.url, "g": json.dumps(list(snap.generation)),
                          "t": datetime.now(UTC).isoformat()})
        return n

    @property
    def snapshot_taken_at(self) -> datetime | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(text("SELECT taken_at FROM snapshot_info WHERE id = 1")).first()
        return datetime.fromisoformat(row[0]) if row else None

    def gallery(self, model_id: str) -> Gallery:
        """The gallery as of the last snapshot; StoreError when there never was one."""
        if self.snapshot_taken_at is None:
            raise StoreError(
                f"the database server is unreachable and this door has no local copy of the gallery "
                f"({self.path}): it cannot decide until the server answers"
            )
        return self.store.gallery(model_id, strict=False)

    # -- the outbox -----------------------------------------------------------------------
    def enqueue(self, kind: str, *, decision: Decision | None = None, claimed: str | None = None,
                decided: str | None = None, distance: float | None = None, threshold: float | None = None,
                detail: str = "", time: datetime | None = None) -> str:
        """Write one decision durably to the outbox; returns its id. Raises StoreError when the
        local file cannot be written (then the door must not act on the decision)."""
        uid = f"door-{uuid.uuid4()}"
        payload = {
            "kind": kind, "decision": decision.value if decision is not None else None, "claimed": claimed,
            "decided": decided, "distance": distance, "threshold": threshold, "detail": detail,
            "time": (time or datetime.now(UTC)).astimezone(UTC).isoformat(),
        }
        try:
            with self.store.engine.begin() as conn:
                conn.execute(text("INSERT INTO outbox (uid, payload) VALUES (:u, :p)"),
                             {"u": uid, "p": json.dumps(payload)})
        except Exception as exc:
            raise StoreError(f"cannot queue the decision in {self.path}: {exc}") from exc
        return uid

    def queued(self) -> list[Queued]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(text("SELECT uid, payload FROM outbox ORDER BY seq")).all()
        out = []
        for uid, payload in rows:
            fields = json.loads(payload)
            out.append(Queued(uid, fields.pop("kind"), fields))
        return out

    def deliver(self, server: Store, *, limit: int | None = None) -> int:
        """Log the queued decisions on ``server``, oldest first, each exactly once; stops at the
        first failure (the rest stay queued). Returns how many were delivered."""
        delivered = 0
        for item in self.queued()[:limit]:
            f = item.fields
            server.log_event(
                item.kind,
                decision=Decision(f["decision"]) if f.get("decision") else None,
                claimed=f.get("claimed"), decided=f.get("decided"), distance=f.get("distance"),
                threshold=f.get("threshold"),
                detail=(f.get("detail") or "") + " [decided offline, from the door's local copy]",
                time=datetime.fromisoformat(f["time"]), uid=item.uid,
            )
            with self.store.engine.begin() as conn:  # only after the server committed it
                conn.execute(text("DELETE FROM outbox WHERE uid = :u"), {"u": item.uid})
            delivered += 1
        if delivered:
            log.info("delivered %d decision(s) queued while the server was unreachable", delivered)
        return delivered


@dataclass(frozen=True)
class DoorStore:
    """A door's database, as :func:`open_door_store` opened it. ``store``: the store (on a
    database server a :class:`faceapp.storage.ReconnectingStore`, which answers again by itself
    when the server does); ``offline``: the door's cache on a server, else None;
    ``unreachable``: why the server did not answer at start (empty when it did), the door then
    deciding from the snapshot taken at ``snapshot_taken_at``."""

    store: Any
    offline: OfflineCache | None = None
    unreachable: str = ""
    snapshot_taken_at: datetime | None = None

    @property
    def notice(self) -> str:
        """What the door says when it starts on its snapshot ("" when the server answered)."""
        if not self.unreachable or self.snapshot_taken_at is None:
            return ""
        return (f"database unreachable: the door runs on its local copy of the gallery "
                f"(taken {self.snapshot_taken_at.isoformat(timespec='seconds')})")

    def close(self) -> None:
        self.store.close()
        if self.offline is not None:
            self.offline.close()


def open_door_store(url: str) -> DoorStore:
    """Open a door's store at ``url``. On a database server (PostgreSQL) the door keeps an
    offline cache (a copy of the gallery to decide from, an outbox for its decisions while the
    server is unreachable); a door started during an outage runs on that copy
    (``unreachable`` set, logged), or, with no copy yet, is refused with a StoreError."""
    from faceapp import storage
    from faceapp.store import crypto

    if not storage.is_shared_server(url):
        return DoorStore(storage.open_store(url))
    cache = OfflineCache(storage.door_cache_dir(), site_key=crypto.SiteKey.load_or_create(crypto.default_key_path()),
                         models=storage.model_facts())
    store = storage.ReconnectingStore(url)
    try:
        store.open()
    except StoreError as exc:
        taken = cache.snapshot_taken_at
        if taken is None:
            cache.close()
            raise StoreError(f"{exc}; this door has no local copy of the gallery yet, so it cannot start "
                             "until the server answers") from None
        log.error("database unreachable (%s): deciding from the local copy of the gallery taken at %s; "
                  "decisions are queued and delivered when it answers", exc, taken.isoformat(timespec="seconds"))
        return DoorStore(store, cache, unreachable=str(exc), snapshot_taken_at=taken)
    return DoorStore(store, cache)
