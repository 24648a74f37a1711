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

The outbox is authenticated: each queued decision carries a sequence number and an HMAC (under
a key derived from the site key) over its sequence number, its id and its content, and the
outbox keeps a MAC'd record of the numbers issued and delivered. At delivery an entry whose MAC
does not verify (edited, forged, renumbered) and every number that is missing (a decision
dropped from the file) is logged on the server as an ``outbox-tamper`` event, and in the log as
an error, never as a decision. An entry sealed with a site key this door no longer holds (it
was queued before a key rotation and the old key is gone) cannot be checked: it is delivered as
``outbox-unverified``, not as a decision.

The copy is sealed with the site key the server recorded when it was taken. After a key
rotation (`faceapp db rotate-key`) the cache is rebuilt under the new key: the snapshot is
dropped (taken again from the server when it answers) and the outbox kept, its entries
re-sealed under the new key when the old one is still known (the running door's key in memory,
or a rotation leftover beside its key file).
A door started while its server is down decides from its snapshot; with no snapshot it refuses
to start (:class:`~faceapp.errors.StoreError`). :func:`open_door_store` opens a door's store
and cache this way; the headless door and the kiosk both use it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from faceapp.errors import StoreError
from faceapp.store import crypto
from faceapp.store.crypto import SiteKey
from faceapp.store.db import writer
from faceapp.store.repository import Gallery, ModelFacts, Store
from faceapp.types import Decision

log = logging.getLogger(__name__)

CACHE_FILE = "door-cache.db"

_OUTBOX = """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    key_id TEXT,
    mac TEXT
)"""
# the outbox's own record: its random id (bound into every MAC), the last sequence number
# issued and the last delivered, a problem found and not reported yet; MAC'd
_OUTBOX_STATE = """CREATE TABLE IF NOT EXISTS outbox_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    outbox_id TEXT NOT NULL,
    issued INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    problem TEXT NOT NULL DEFAULT '',
    key_id TEXT NOT NULL,
    mac TEXT NOT NULL
)"""
_MAC_LABEL = b"faceapp/door-outbox"
TAMPER_KIND = "outbox-tamper"
UNVERIFIED_KIND = "outbox-unverified"
_UNCHECKED = "unchecked: "  # a problem that is a key rotation's doing, not tampering
_SHOWN = 400  # characters of a doubtful entry's content quoted in its report
_SNAPSHOT = "CREATE TABLE IF NOT EXISTS snapshot_info (id INTEGER PRIMARY KEY CHECK (id = 1), " \
            "server TEXT NOT NULL, generation TEXT NOT NULL, taken_at TEXT NOT NULL)"


@dataclass(frozen=True)
class Queued:
    """One decision waiting in the outbox."""

    uid: str
    kind: str
    fields: dict[str, Any]


class OfflineCache:
    """The door's local snapshot and outbox in ``folder`` (sealed with ``site_key``).

    ``key_file``: the door's key file. When the server records another site key (a rotation),
    :meth:`refresh` takes the new key from it and rebuilds the cache under it; at start, a
    cache sealed with another key than ``site_key`` is rebuilt (its outbox kept) whether or not
    it is given, the old key being looked for among the key file's rotation leftovers."""

    def __init__(self, folder: str | Path, *, site_key: SiteKey, models: dict[str, ModelFacts] | None = None,
                 key_file: str | Path | None = None) -> None:
        self.path = Path(folder) / CACHE_FILE
        self._models = models
        self._key_file = Path(key_file) if key_file is not None else None
        self._lock = threading.RLock()
        self.rebuilt = False  # this start found the cache sealed with another key and rebuilt it
        old_id = _recorded_key_id(self.path)
        if old_id is not None and old_id != site_key.key_id:
            old = None
            if self._key_file is not None:
                try:
                    old = crypto.find_key(old_id, self._key_file)
                except StoreError:
                    old = None
            self._rebuild(site_key, old, reason=f"it is sealed with site key {old_id}, this door's key is "
                                                f"{site_key.key_id} (a key rotation)")
        self.store = self._open(self.path, site_key)
        self._macs = {site_key.key_id: site_key.derive(_MAC_LABEL)}
        self._init_state()

    def _open(self, path: Path, site_key: SiteKey) -> Store:
        store = Store(f"sqlite:///{path}", site_key=site_key, models=self._models)
        engine = store.engine

        @event.listens_for(engine, "connect")
        def _durable(dbapi_connection, _record) -> None:  # an acknowledged enqueue survives power loss
            dbapi_connection.execute("PRAGMA synchronous = FULL")

        engine.dispose()  # connections opened before the listener reopen with it
        with engine.begin() as conn:
            conn.exec_driver_sql(_OUTBOX)
            conn.exec_driver_sql(_SNAPSHOT)
            conn.exec_driver_sql(_OUTBOX_STATE)
            columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(outbox)")}
            for column in ("key_id", "mac"):  # an outbox from before entries were authenticated
                if column not in columns:
                    conn.exec_driver_sql(f"ALTER TABLE outbox ADD COLUMN {column} TEXT")
        return store

    def close(self) -> None:
        self.store.close()

    # -- sealing ---------------------------------------------------------------------------
    @property
    def _key_id(self) -> str:
        return self.store.site_key_id

    def _entry_mac(self, key_id: str | None, outbox_id: str, seq: int, uid: str, payload: str) -> str | None:
        return _mac_with(self._macs, key_id, outbox_id, seq, uid, payload)

    def _state_mac(self, key_id: str | None, outbox_id: str, issued: int, delivered: int, problem: str) -> str | None:
        return _state_mac_with(self._macs, {"key_id": key_id, "outbox_id": outbox_id, "issued": issued,
                                            "delivered": delivered, "problem": problem})

    def _write_state(self, conn: Any, outbox_id: str, issued: int, delivered: int, problem: str) -> None:
        conn.execute(text("INSERT OR REPLACE INTO outbox_state (id, outbox_id, issued, delivered, problem, key_id, mac) "
                          "VALUES (1, :o, :i, :d, :p, :k, :m)"),
                     {"o": outbox_id, "i": issued, "d": delivered, "p": problem, "k": self._key_id,
                      "m": self._state_mac(self._key_id, outbox_id, issued, delivered, problem)})

    def _read_state(self, conn: Any) -> dict[str, Any]:
        """The outbox's record, with ``problem`` set when it is missing or fails its MAC."""
        row = conn.execute(text("SELECT outbox_id, issued, delivered, problem, key_id, mac FROM outbox_state "
                                "WHERE id = 1")).first()
        if row is None:
            top = conn.execute(text("SELECT min(seq), max(seq), count(mac) FROM outbox")).first()
            low, high, macs = (top[0] or 1), (top[1] or 0), top[2]
            problem = ("the outbox's record of its sequence numbers was deleted" if macs else "")
            return {"outbox_id": secrets.token_hex(8), "issued": high, "delivered": low - 1, "problem": problem,
                    "new": True}
        state = {"outbox_id": row.outbox_id, "issued": int(row.issued), "delivered": int(row.delivered),
                 "problem": row.problem or "", "new": False}
        expected = self._state_mac(row.key_id, row.outbox_id, row.issued, row.delivered, row.problem or "")
        if expected is None:
            state["problem"] = state["problem"] or (
                f"{_UNCHECKED}the outbox's record of its sequence numbers is sealed with site key {row.key_id}, "
                "which this door no longer holds")
        elif row.mac is None or not hmac.compare_digest(expected, row.mac):
            state["problem"] = "the outbox's record of its sequence numbers was altered"
        return state

    def _init_state(self) -> None:
        with self._lock, writer(self.store.engine).begin() as conn:
            state = self._read_state(conn)
            if state["new"]:
                self._write_state(conn, state["outbox_id"], state["issued"], state["delivered"], state["problem"])

    def _rebuild(self, site_key: SiteKey, old: SiteKey | None, *, reason: str) -> None:
        """Make the cache file anew under ``site_key``: an empty snapshot and the same outbox,
        each entry (and the outbox's record) re-sealed under the new key when it verifies under
        ``old``; one that does not keeps its seal (and is reported at delivery). Atomic: the
        new file replaces the old one complete, or not at all."""
        rows, state = _read_outbox_raw(self.path)
        old_macs = {old.key_id: old.derive(_MAC_LABEL)} if old is not None else {}
        tmp = self.path.with_name(CACHE_FILE + ".rebuild")
        _remove_sqlite(tmp)
        fresh = self._open(tmp, site_key)
        kept = resealed = 0
        try:
            self.store, self._macs = fresh, {site_key.key_id: site_key.derive(_MAC_LABEL)}
            with writer(fresh.engine).begin() as conn:
                outbox_id = state["outbox_id"] if state else secrets.token_hex(8)
                for seq, uid, payload, key_id, mac in rows:
                    check = _mac_with(old_macs, key_id, outbox_id, seq, uid, payload) if state else None
                    if check is not None and mac is not None and hmac.compare_digest(check, mac):
                        key_id, mac = site_key.key_id, self._entry_mac(site_key.key_id, outbox_id, seq, uid, payload)
                        resealed += 1
                    conn.execute(text("INSERT INTO outbox (seq, uid, payload, key_id, mac) VALUES (:s, :u, :p, :k, :m)"),
                                 {"s": seq, "u": uid, "p": payload, "k": key_id, "m": mac})
                    kept += 1
                if state is not None:
                    problem = state["problem"]
                    check = _state_mac_with(old_macs, state)
                    if check is None:
                        problem = problem or (f"{_UNCHECKED}the outbox's record of its sequence numbers was sealed "
                                              f"with site key {state['key_id']}, which this door no longer holds")
                    elif state["mac"] is None or not hmac.compare_digest(check, state["mac"]):
                        problem = problem or "the outbox's record of its sequence numbers was altered"
                    self._write_state(conn, outbox_id, state["issued"], state["delivered"], problem)
        finally:
            fresh.close()
        _remove_sqlite(self.path, keep_main=True)
        os.replace(tmp, self.path)
        crypto._fsync_dir(self.path.parent)
        self.rebuilt = True
        log.warning("the door's cache %s was rebuilt: %s; its copy of the gallery was dropped (taken again from "
                    "the server), its %d queued decision(s) kept (%d re-sealed under the new key)",
                    self.path, reason, kept, resealed)

    # -- the snapshot ---------------------------------------------------------------------
    def refresh(self, server: Store) -> int:
        """Copy the server's people and templates (sealed, as stored) into the snapshot, in one
        transaction; returns the number of templates. The server must seal with this site key;
        when it records another one (a rotation) and the door's key file holds it, the cache is
        rebuilt under it first, its queued decisions kept."""
        snap = server.sealed_snapshot()
        with self._lock:
            if snap.site_key_id != self._key_id:
                self._rekey(snap.site_key_id)
            n = self.store.replace_with_snapshot(snap)
            with self.store.engine.begin() as conn:
                conn.execute(text("INSERT OR REPLACE INTO snapshot_info (id, server, generation, taken_at) "
                                  "VALUES (1, :s, :g, :t)"),
                             {"s": server.url, "g": json.dumps(list(snap.generation)),
                              "t": datetime.now(UTC).isoformat()})
        return n

    def _rekey(self, key_id: str) -> None:
        if self._key_file is None:
            raise StoreError(f"the server's gallery is sealed with site key {key_id}, this door's copy with "
                             f"{self._key_id}; give the door the server's key file")
        try:
            new = crypto.find_key(key_id, self._key_file)
        except StoreError as exc:
            raise StoreError(f"the server's gallery is sealed with site key {key_id} (a key rotation), and this "
                             f"door's key file does not hold it: {exc}") from None
        old = self.store._site_key
        self.store.close()
        self._rebuild(new, old, reason=f"the server's site key was rotated from {old.key_id} to {key_id}")
        self.store = self._open(self.path, new)
        self._macs = {new.key_id: new.derive(_MAC_LABEL)}

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
        """Write one decision durably to the outbox, with the next sequence number and its MAC;
        returns its id. Raises StoreError when the local file cannot be written (then the door
        must not act on the decision)."""
        uid = f"door-{uuid.uuid4()}"
        payload = json.dumps({
            "kind": kind, "decision": decision.value if decision is not None else None, "claimed": claimed,
            "decided": decided, "distance": distance, "threshold": threshold, "detail": detail,
            "time": (time or datetime.now(UTC)).astimezone(UTC).isoformat(),
        })
        try:
            with self._lock, writer(self.store.engine).begin() as conn:
                state = self._read_state(conn)
                if state["problem"] and not state["new"]:
                    log.error("door outbox %s: %s (possible tampering; reported at the next delivery)",
                              self.path, state["problem"])
                top = conn.execute(text("SELECT max(seq) FROM outbox")).scalar() or 0
                seq = max(state["issued"], state["delivered"], top) + 1
                conn.execute(text("INSERT INTO outbox (seq, uid, payload, key_id, mac) VALUES (:s, :u, :p, :k, :m)"),
                             {"s": seq, "u": uid, "p": payload, "k": self._key_id,
                              "m": self._entry_mac(self._key_id, state["outbox_id"], seq, uid, payload)})
                self._write_state(conn, state["outbox_id"], seq, state["delivered"], state["problem"])
        except Exception as exc:
            raise StoreError(f"cannot queue the decision in {self.path}: {exc}") from exc
        return uid

    def queued(self) -> list[Queued]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(text("SELECT uid, payload FROM outbox ORDER BY seq")).all()
        out = []
        for uid, payload in rows:
            try:
                fields = json.loads(payload)
                kind = fields.pop("kind")
            except (ValueError, TypeError, KeyError, AttributeError):
                fields, kind = {}, "?"
            out.append(Queued(uid, kind, fields))
        return out

    def deliver(self, server: Store, *, limit: int | None = None) -> int:
        """Log the queued decisions on ``server``, oldest first, each exactly once; stops at the
        first failure (the rest stay queued). Returns how many queued entries were handled.

        An entry is logged as the decision it records only when its MAC verifies; one that
        does not (edited, forged, renumbered), a replayed one, every sequence number missing
        (dropped from the file) and an altered record of the sequence are logged as
        ``outbox-tamper`` events (and as errors here); an entry sealed with a site key this door
        no longer holds as ``outbox-unverified``."""
        with self._lock, self.store.engine.connect() as conn:
            state = self._read_state(conn)
            rows = conn.execute(text("SELECT seq, uid, payload, key_id, mac FROM outbox ORDER BY seq")).all()
        oid = state["outbox_id"]
        if state["problem"].startswith(_UNCHECKED):  # a key rotation, not tampering: said, not alarmed
            detail = state["problem"][len(_UNCHECKED):] + " (queued before a key rotation): it cannot be checked"
            log.warning("door outbox %s: %s", self.path, detail)
            server.log_event(UNVERIFIED_KIND, detail=f"door outbox {self.path}: {detail}",
                             uid=f"outbox-{oid}-state-{state['issued']}-{state['delivered']}"[:64])
        elif state["problem"]:
            self._report(server, f"{oid}-state-{state['issued']}-{state['delivered']}", state["problem"])
        if state["problem"]:
            state["problem"] = ""
            self._advance(state, None, state["delivered"])
        handled = 0
        issued = state["issued"]  # as read with the rows (a decision queued meanwhile is not missing)
        expected = state["delivered"] + 1
        for seq, uid, payload, key_id, mac in rows[:limit]:
            if seq < expected:
                self._report(server, f"{oid}-{seq}-replay",
                             f"queued decision #{seq} was delivered before and is in the outbox again (replayed): "
                             f"{_shown(payload)}")
            else:
                if seq > expected:
                    self._report_missing(server, oid, expected, seq - 1)
                self._deliver_one(server, oid, seq, uid, payload, key_id, mac)
                expected = seq + 1
            self._advance(state, seq, max(state["delivered"], seq))
            handled += 1
        if limit is None or len(rows) <= limit:
            if issued >= expected:
                self._report_missing(server, oid, expected, issued)
                self._advance(state, None, issued)
        if handled:
            log.info("delivered %d decision(s) queued while the server was unreachable", handled)
        return handled

    def _deliver_one(self, server: Store, oid: str, seq: int, uid: str, payload: str, key_id: str | None,
                     mac: str | None) -> None:
        check = self._entry_mac(key_id, oid, seq, uid, payload) if key_id is not None else None
        fields: dict[str, Any] | None = None
        if check is not None and mac is not None and hmac.compare_digest(check, mac):
            try:
                fields = json.loads(payload)
                kind = fields.pop("kind")
                decision = Decision(fields["decision"]) if fields.get("decision") else None
                when = datetime.fromisoformat(fields["time"])
            except (ValueError, TypeError, KeyError, AttributeError):
                fields = None  # authentic but unreadable: cannot happen short of a bug; reported below
        if fields is not None:
            server.log_event(
                kind, decision=decision, claimed=fields.get("claimed"), decided=fields.get("decided"),
                distance=fields.get("distance"), threshold=fields.get("threshold"),
                detail=(fields.get("detail") or "") + " [decided offline, from the door's local copy]",
                time=when, uid=uid,
            )
            return
        why = None
        if key_id is None and mac is None:
            why = "it was queued by a faceapp from before queued decisions were authenticated"
        elif check is None and mac is not None and key_id is not None and key_id not in self._macs:
            why = (f"it was sealed with site key {key_id}, which this door no longer holds (queued before a key "
                   "rotation)")
        if why is not None:
            detail = (f"queued decision #{seq} ({uid}) cannot be authenticated: {why}; not recorded as a decision: "
                      f"{_shown(payload)}")
            log.warning("door outbox %s: %s", self.path, detail)
            server.log_event(UNVERIFIED_KIND, detail=detail, uid=f"outbox-{oid}-{seq}-unverified")
            return
        self._report(server, f"{oid}-{seq}-tamper",
                     f"queued decision #{seq} failed its authentication (edited, forged or renumbered in the "
                     f"door's cache file): {_shown(payload)}")

    def _report_missing(self, server: Store, oid: str, first: int, last: int) -> None:
        which = f"#{first}" if first == last else f"#{first} to #{last}"
        self._report(server, f"{oid}-gap-{first}-{last}",
                     f"queued decision(s) {which} are missing from the outbox: dropped from the door's cache file "
                     "before delivery")

    def _report(self, server: Store, key: str, detail: str) -> None:
        log.error("door outbox %s: possible tampering: %s", self.path, detail)
        server.log_event(TAMPER_KIND, detail=f"door outbox {self.path}: {detail}", uid=f"outbox-{key}"[:64])

    def _advance(self, state: dict[str, Any], seq: int | None, delivered: int) -> None:
        """After the server committed: drop entry ``seq`` and record ``delivered``, in one local
        transaction (a crash before it delivers the entry again, and the server keeps one)."""
        with self._lock, writer(self.store.engine).begin() as conn:
            if seq is not None:
                conn.execute(text("DELETE FROM outbox WHERE seq = :s"), {"s": seq})
            current = conn.execute(text("SELECT issued FROM outbox_state WHERE id = 1")).scalar()
            issued = max(state["issued"], int(current or 0), delivered)
            state["issued"], state["delivered"] = issued, delivered
            self._write_state(conn, state["outbox_id"], issued, delivered, state["problem"])


def _shown(payload: str) -> str:
    return payload if len(payload) <= _SHOWN else payload[:_SHOWN] + "..."


def _mac_with(macs: dict[str, bytes], key_id: str | None, outbox_id: str, seq: int, uid: str,
              payload: str) -> str | None:
    key = macs.get(key_id) if key_id is not None else None
    if key is None:
        return None
    msg = f"faceapp/outbox/entry/v1\x00{outbox_id}\x00{int(seq)}\x00{uid}\x00".encode() + payload.encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _state_mac_with(macs: dict[str, bytes], state: dict[str, Any]) -> str | None:
    key = macs.get(state["key_id"]) if state["key_id"] is not None else None
    if key is None:
        return None
    msg = (f"faceapp/outbox/state/v1\x00{state['outbox_id']}\x00{int(state['issued'])}\x00"
           f"{int(state['delivered'])}\x00{state['problem']}").encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _recorded_key_id(path: Path) -> str | None:
    """The site key id a cache file records, read around the Store (which refuses another key)."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'site_key_id'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return row[0] if row else None


def _read_outbox_raw(path: Path) -> tuple[list[tuple], dict[str, Any] | None]:
    """The outbox rows and its record as stored, and the file's write-ahead log emptied."""
    conn = sqlite3.connect(path)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(outbox)")}
        rows: list[tuple] = []
        if columns:
            extra = ", ".join(c if c in columns else "NULL" for c in ("key_id", "mac"))
            rows = conn.execute(f"SELECT seq, uid, payload, {extra} FROM outbox ORDER BY seq").fetchall()
        state = None
        try:
            found = conn.execute("SELECT outbox_id, issued, delivered, problem, key_id, mac FROM outbox_state "
                                 "WHERE id = 1").fetchone()
        except sqlite3.Error:
            found = None
        if found is not None:
            state = dict(zip(("outbox_id", "issued", "delivered", "problem", "key_id", "mac"), found))
            state["problem"] = state["problem"] or ""
        elif rows:  # from before the outbox had a record: the numbers are what the rows say
            state = {"outbox_id": secrets.token_hex(8), "issued": rows[-1][0], "delivered": rows[0][0] - 1,
                     "problem": "", "key_id": None, "mac": None}
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return rows, state


def _remove_sqlite(path: Path, *, keep_main: bool = False) -> None:
    for suffix in ("-wal", "-shm", "-journal") + (() if keep_main else ("",)):
        Path(str(path) + suffix).unlink(missing_ok=True)


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
    key_file = crypto.default_key_path()
    cache = OfflineCache(storage.door_cache_dir(), site_key=crypto.SiteKey.load_or_create(key_file),
                         models=storage.model_facts(), key_file=key_file)
    store = storage.ReconnectingStore(url)
    try:
        store.open()
    except StoreError as exc:
        from faceapp.store.db import server_unreachable

        if not server_unreachable(exc):  # the server answered and refused (altered, permissions, ...): no copy
            cache.close()
            raise
        taken = cache.snapshot_taken_at
        if taken is None:
            cache.close()
            why = (" (its copy was sealed with a site key that is not this door's any more, and was dropped)"
                   if cache.rebuilt else " yet")
            raise StoreError(f"{exc}; this door has no local copy of the gallery{why}, so it cannot start "
                             "until the server answers") from None
        log.error("database unreachable (%s): deciding from the local copy of the gallery taken at %s; "
                  "decisions are queued and delivered when it answers", exc, taken.isoformat(timespec="seconds"))
        return DoorStore(store, cache, unreachable=str(exc), snapshot_taken_at=taken)
    if cache.rebuilt:  # a copy under the new key now, not at the first gallery check
        try:
            cache.refresh(store)
        except StoreError as exc:
            log.error("the door's local copy of the gallery could not be taken again: %s", exc)
    return DoorStore(store, cache)
