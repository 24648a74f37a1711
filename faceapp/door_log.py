"""Recording the door's decisions: fail secure, never silent.

A door must not open on a decision it could not log, and must not freeze waiting for the
database (an import in another process may hold SQLite's write lock for seconds).
:meth:`DoorRecorder.record` commits one :class:`~faceapp.door.DoorOutcome` within a time
budget and returns a :class:`DoorRecord` with the *final* outcome:

- committed: the outcome as decided, carrying its ``event_id`` (a grant is reported only now,
  so what opens a lock or calls a webhook can carry the event id);
- not committed, a grant: a ``Decision.LOG_UNAVAILABLE`` denial (``granted`` False) whose
  detail says why; never shown as a grant;
- not committed, a denial: the same denial, with ``error`` set.

The event that could not be committed is kept in memory (a withheld grant as its
``LOG_UNAVAILABLE`` denial, so no event ever claims it) and written with its decision's time
by :meth:`DoorRecorder.flush_pending` once the store answers again (best effort: the queue is
bounded and lost when the process ends).

The budget: each attempt waits at most ``attempt_wait_s`` for the write lock (SQLite's busy
timeout, set per attempt and never past the budget), then the recorder backs off
(``backoff_s``, doubling) and tries again, until ``budget_s`` from the start is spent or
``max_attempts`` were made. A :class:`~faceapp.errors.StoreError` is retried; any other
exception is a bug and denies at once. With an offline outbox (a door on a database server),
only a failure to reach the server (:func:`faceapp.store.db.server_unreachable`) commits the decision to the
outbox instead; any other failure (the server answered and refused, a bug) denies as above and
is logged, so a refused write never turns into an indefinite "offline" grant.

For a SQLite file or a PostgreSQL database the recorder writes through its own engine on the
same database, whose lock wait is set before each attempt (SQLite's busy timeout, PostgreSQL's ``lock_timeout``; the store's own 5 s busy wait stays for
everything else); an in-memory or other store is written through itself, where a single
attempt's wait is the store's own.

Qt-free: the GUI door calls :meth:`DoorRecorder.record` from a worker thread.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faceapp.door import DoorOutcome, log_outcome
from faceapp.errors import StoreError
from faceapp.types import Decision, Event

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 2.0  # the longest a visitor waits for the log before being denied
DEFAULT_ATTEMPT_WAIT_S = 0.5  # SQLite busy wait of one attempt
DEFAULT_BACKOFF_S = 0.05  # pause after the first failed attempt; doubles after each
DEFAULT_MAX_ATTEMPTS = 5
FLUSH_BUDGET_S = 0.5  # flush_pending's default time budget
MAX_PENDING = 500  # events kept for a later write; the oldest is dropped beyond this
_MIN_WAIT_MS = 10  # an attempt always waits at least this long for the lock


@dataclass(frozen=True)
class DoorRecord:
    """What :meth:`DoorRecorder.record` made of one decision. ``outcome`` is the final one (show
    and act on it); ``decided`` is what the door machine decided; ``event`` is the committed
    event (None when it could not be committed, ``error`` says why)."""

    outcome: DoorOutcome
    decided: DoorOutcome
    event: Event | None
    decided_at: datetime  # UTC; the time the pending event is written with
    error: str = ""
    attempts: int = 0
    elapsed_s: float = 0.0
    queued_uid: str | None = None  # the server was unreachable: committed to the door's local outbox instead

    @property
    def committed(self) -> bool:
        return self.event is not None

    @property
    def event_id(self) -> int | None:
        return self.event.id if self.event is not None else None

    @property
    def granted(self) -> bool:
        """True only for a grant whose event was committed (on the server, or durably in the
        door's local outbox while the server is unreachable)."""
        return self.outcome.granted and (self.event is not None or self.queued_uid is not None)


@dataclass(frozen=True)
class _Pending:
    outcome: DoorOutcome
    when: datetime


def withheld(outcome: DoorOutcome, reason: str) -> DoorOutcome:
    """The ``LOG_UNAVAILABLE`` denial that replaces a grant which could not be logged."""
    who = outcome.name or outcome.claimed or "?"
    return dataclasses.replace(
        outcome,
        decision=Decision.LOG_UNAVAILABLE,
        name=None,
        event_id=None,
        detail=f"access log unavailable: the {outcome.mode.value} match for {who} was withheld ({reason}); "
        f"decided: {outcome.detail}",
    )


class DoorRecorder:
    """Commits door decisions within a time budget (see the module doc).

    ``store``: a :class:`faceapp.store.repository.Store` (or anything with its ``log_event``).
    ``budget_s`` may be changed between calls. ``clock`` / ``sleep`` are for tests. Thread-safe:
    ``record`` and ``flush_pending`` may run at the same time in different threads."""

    def __init__(
        self,
        store: Any,
        *,
        kind: str = "door",
        budget_s: float = DEFAULT_BUDGET_S,
        attempt_wait_s: float = DEFAULT_ATTEMPT_WAIT_S,
        backoff_s: float = DEFAULT_BACKOFF_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        offline: Any = None,
    ) -> None:
        if not budget_s > 0 or not attempt_wait_s > 0 or backoff_s < 0:
            raise ValueError(
                f"budget_s and attempt_wait_s must be > 0 and backoff_s >= 0 (got {budget_s}, {attempt_wait_s}, {backoff_s})"
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (got {max_attempts})")
        self.store = store
        self.kind = kind
        self.budget_s = float(budget_s)
        self.attempt_wait_s = float(attempt_wait_s)
        self.backoff_s = float(backoff_s)
        self.max_attempts = int(max_attempts)
        self.clock = clock
        self.sleep = sleep
        # a faceapp.store.offline.OfflineCache: where a decision is committed when the server
        # cannot be reached (delivered to the server later, exactly once)
        self.offline = offline
        self._lock = threading.Lock()  # guards the pending queue
        self._prepare_lock = threading.Lock()
        self._pending: deque[_Pending] = deque()
        self._local = threading.local()  # this thread's busy wait, read when a connection is checked out
        self._writer: Any = None  # the store to write through (made by prepare())
        self._own_engine: Any = None
        self._prepared = False
        self._closed = False

    # -- life -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Open the short-wait connection to a SQLite file (done by the first ``record`` when
        not called before; the GUI calls it in the background at start-up)."""
        with self._prepare_lock:
            if self._prepared:
                return
            writer = self._open_writer()
            if writer is not None:
                self._writer, self._prepared = writer, True

    def close(self) -> None:
        """Release the recorder's own connection (idempotent; the store itself stays open)."""
        with self._prepare_lock:
            self._closed = True
            engine, self._own_engine, self._writer = self._own_engine, None, None
        if engine is not None:
            self._finalizer()

    @property
    def pending(self) -> int:
        """Events that could not be committed yet (written by :meth:`flush_pending`)."""
        with self._lock:
            return len(self._pending)

    # -- recording --------------------------------------------------------------------------
    def record(self, outcome: DoorOutcome) -> DoorRecord:
        """Commit ``outcome``'s event within the budget; returns the final outcome (never raises
        for a database failure: a grant that cannot be logged comes back as a denial)."""
        start = self.clock()
        deadline = start + self.budget_s
        decided_at = datetime.now(UTC)
        attempts, delay, error, event = 0, self.backoff_s, "", None
        unreachable = False  # the last failure: the server could not be reached (the outbox may take it)
        while True:
            attempts += 1
            try:
                with self._waiting(deadline - self.clock()):
                    event = log_outcome(self._store(), outcome, kind=self.kind, time=decided_at)
                break
            except StoreError as exc:
                error = str(exc)
                from faceapp.store.db import server_unreachable  # (here: the window loads no SQLAlchemy)

                unreachable = server_unreachable(exc)
            except Exception as exc:  # a bug, not a busy database: no retry, no grant, no outbox
                log.exception("door decision could not be logged")
                error = f"{type(exc).__name__}: {exc}"
                unreachable = False
                break
            left = deadline - self.clock()
            if attempts >= self.max_attempts or left <= 0:
                break
            self.sleep(min(delay, left))
            delay *= 2
            if deadline - self.clock() <= 0:
                break
        elapsed = self.clock() - start
        if event is not None:
            return DoorRecord(dataclasses.replace(outcome, event_id=event.id), outcome, event, decided_at,
                              attempts=attempts, elapsed_s=elapsed)
        reason = f"its event could not be committed within {self.budget_s:g} s, {attempts} attempt(s): {error}"
        if self.offline is not None and not unreachable:
            # the server answered and refused the write (no permission, a constraint, the log
            # altered, a full disk, a lock held too long) or the door's own code failed: that is
            # not an outage, and queuing would open the door "offline" for as long as it lasts
            reason += "; not queued at the door: the failure is not a connection to the server"
        if self.offline is not None and unreachable:
            try:
                uid = self.offline.enqueue(self.kind, decision=outcome.decision, claimed=outcome.claimed,
                                           decided=outcome.name, distance=outcome.distance,
                                           threshold=outcome.threshold, detail=outcome.detail, time=decided_at)
            except Exception as exc:  # not even the local outbox: fail secure
                reason += f"; the door's local outbox failed too: {exc}"
            else:
                log.warning("door decision %s committed to the local outbox (%s): %s",
                            outcome.decision.value, uid, reason)
                return DoorRecord(outcome, outcome, None, decided_at, error=error, attempts=attempts,
                                  elapsed_s=self.clock() - start, queued_uid=uid)
        final = withheld(outcome, reason) if outcome.granted else outcome
        log.error("door decision %s %s", outcome.decision.value,
                  f"withheld, access denied: {reason}" if outcome.granted else f"not logged yet: {reason}")
        self._keep(_Pending(final, decided_at))
        return DoorRecord(final, outcome, None, decided_at, error=error, attempts=attempts, elapsed_s=elapsed)

    def flush_pending(self, *, budget_s: float = FLUSH_BUDGET_S) -> int:
        """Write the events kept by failed records, oldest first, with their decisions' times;
        stops at the first failure (they stay for the next call). Returns how many were written."""
        deadline = self.clock() + budget_s
        written = 0
        if self.offline is not None:
            try:
                with self._waiting(deadline - self.clock()):
                    written += self.offline.deliver(self._store())
            except Exception as exc:
                log.debug("the door's outbox cannot be delivered yet: %s", exc)
                return written
        while self.clock() < deadline:
            with self._lock:
                if not self._pending:
                    break
                item = self._pending.popleft()
            try:
                with self._waiting(deadline - self.clock()):
                    log_outcome(self._store(), item.outcome, kind=self.kind, time=item.when)
            except Exception as exc:
                with self._lock:
                    self._pending.appendleft(item)
                log.debug("pending door events still cannot be logged: %s", exc)
                break
            written += 1
        if written:
            log.info("%d door decision(s) logged late", written)
        return written

    # -- internals --------------------------------------------------------------------------
    def _keep(self, item: _Pending) -> None:
        with self._lock:
            self._pending.append(item)
            while len(self._pending) > MAX_PENDING:
                lost = self._pending.popleft()
                log.error("door decision %s at %s dropped: the access log was unavailable too long",
                          lost.outcome.decision.value, lost.when.isoformat())

    def _store(self) -> Any:
        if not self._prepared and not self._closed:
            self.prepare()
        return self._writer if self._writer is not None else self.store

    @contextmanager
    def _waiting(self, left_s: float):
        """This thread's attempts wait for the lock no longer than ``attempt_wait_s`` and the
        budget left."""
        ms = max(_MIN_WAIT_MS, int(1000 * min(self.attempt_wait_s, left_s)))
        old = getattr(self._local, "busy_ms", None)
        self._local.busy_ms = ms
        try:
            yield
        finally:
            self._local.busy_ms = old

    def _open_writer(self) -> Any:
        """A Store on its own engine whose lock wait is set per attempt (SQLite file: the busy
        timeout; PostgreSQL: ``lock_timeout``); the store itself for anything else. None when
        it cannot be opened now (the store is used, and it is tried again next time)."""
        engine = getattr(self.store, "engine", None)
        url = getattr(engine, "url", None)
        if url is None or self._closed:
            return self.store
        from faceapp.store.db import is_sqlite_memory, make_engine

        backend = url.get_backend_name()
        if backend == "sqlite":
            if is_sqlite_memory(url) or str(url.database or "").startswith("file:"):
                return self.store  # one connection (memory) or a URI name: no second engine
            setting = "PRAGMA busy_timeout = {ms}"
        elif backend == "postgresql":
            setting = "SET lock_timeout = {ms}"
        else:
            return self.store
        try:
            from sqlalchemy import event as sa_event

            from faceapp.store.repository import Store

            own = make_engine(url, busy_timeout_ms=int(1000 * self.attempt_wait_s))
            local, default_ms = self._local, int(1000 * self.attempt_wait_s)  # (no reference to self)

            @sa_event.listens_for(own, "checkout")
            def _lock_wait(dbapi_connection, _record, _proxy) -> None:
                cursor = dbapi_connection.cursor()
                try:
                    cursor.execute(setting.format(ms=int(getattr(local, "busy_ms", None) or default_ms)))
                finally:
                    cursor.close()

            try:
                writer = Store(engine=own)
            except BaseException:
                own.dispose()
                raise
        except StoreError as exc:
            log.warning("door log: no short-wait connection yet (%s); writing through the store", exc)
            return None
        except Exception as exc:  # keep the door working on the store's own connection
            log.warning("door log: cannot open a short-wait connection (%s: %s); writing through the store",
                        type(exc).__name__, exc)
            return self.store
        self._own_engine = own
        self._finalizer = weakref.finalize(self, own.dispose)
        return writer
