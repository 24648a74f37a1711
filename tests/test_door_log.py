"""faceapp.door_log: a door decision is reported only with its committed event (fail secure).

The real-database tests hold the write lock from a second connection (SQLite ``BEGIN
IMMEDIATE``, PostgreSQL ``LOCK TABLE events``, in another thread, as an import in another
process would) and check what the recorder makes
of a grant it cannot log, and of one it can once the lock is released in time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from dblock import WriteLock

from faceapp.door import DoorMode, DoorOutcome
from faceapp.door_log import DoorRecorder
from faceapp.errors import StoreError
from faceapp.types import Decision

TAU = 0.36


def _grant(name="alice", mode=DoorMode.RECOGNIZE, claimed=None) -> DoorOutcome:
    return DoorOutcome(Decision.MATCH, mode, claimed, name, 0.2, TAU, 3, f"{mode.value}: 3 consecutive frames agreed")


def _denial() -> DoorOutcome:
    return DoorOutcome(Decision.NOT_RECOGNIZED, DoorMode.RECOGNIZE, None, None, 0.7, TAU, 3, "recognize: 3 frames")


@pytest.fixture
def store(db_url):
    from faceapp.store.repository import Store

    s = Store(db_url)
    yield s
    s.close()


def _lock(store, hold_s=None) -> WriteLock:
    return WriteLock(store.engine.url, hold_s)


def _in_thread(func, *args, timeout: float):
    """Run func in a thread; the test fails if it has not returned after ``timeout`` s."""
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("value", func(*args)), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{getattr(func, '__name__', func)} did not return within {timeout} s"
    return out["value"]


# -- against a real SQLite database ------------------------------------------------------------
def test_a_grant_whose_event_cannot_be_committed_becomes_a_log_unavailable_denial(store):
    recorder = DoorRecorder(store, budget_s=0.6, attempt_wait_s=0.2)
    with _lock(store):  # held until after the recorder returned: longer than its budget
        # the store's own busy wait is 5 s (PostgreSQL: none): the recorder gives up on its 0.6 s budget
        rec = _in_thread(recorder.record, _grant(), timeout=4.0)
    assert rec.outcome.decision is Decision.LOG_UNAVAILABLE
    assert not rec.outcome.granted and not rec.granted
    assert rec.outcome.name is None and rec.event is None and rec.event_id is None
    assert rec.decided.decision is Decision.MATCH  # what the machine had decided
    assert "alice" in rec.outcome.detail and "lock" in rec.outcome.detail
    assert rec.attempts >= 2  # retried with backoff within the budget
    assert not any(e.decision is Decision.MATCH for e in store.events())  # no event claims a grant
    assert recorder.pending == 1


def test_the_withheld_grant_is_logged_as_a_denial_when_the_store_recovers(store):
    recorder = DoorRecorder(store, budget_s=0.4)
    before = datetime.now(UTC)
    with _lock(store):
        rec = _in_thread(recorder.record, _grant(), timeout=4.0)
        assert recorder.flush_pending() == 0  # still locked: kept for later
    assert recorder.pending == 1
    flushed_at = datetime.now(UTC)
    assert recorder.flush_pending() == 1
    assert recorder.pending == 0
    [event] = store.events()
    assert (event.kind, event.decision, event.decided) == ("door", Decision.LOG_UNAVAILABLE, None)
    assert "alice" in event.detail
    assert before <= event.time < flushed_at  # the decision's time, not the flush's
    assert event.time == rec.decided_at


def test_a_lock_released_within_the_budget_grants_with_the_committed_event(store):
    recorder = DoorRecorder(store, budget_s=5.0)
    with _lock(store, hold_s=0.3):
        rec = _in_thread(recorder.record, _grant(), timeout=10.0)
    assert rec.granted and rec.outcome.decision is Decision.MATCH and rec.outcome.name == "alice"
    assert rec.event is not None and rec.event_id == rec.event.id == rec.outcome.event_id
    [event] = store.events()
    assert (event.id, event.decision, event.decided) == (rec.event_id, Decision.MATCH, "alice")
    assert recorder.pending == 0


def test_a_denial_that_cannot_be_logged_stays_a_denial_and_is_logged_later(store):
    recorder = DoorRecorder(store, budget_s=0.3)
    with _lock(store):
        rec = _in_thread(recorder.record, _denial(), timeout=4.0)
    assert rec.outcome.decision is Decision.NOT_RECOGNIZED and not rec.committed and rec.error
    assert recorder.flush_pending() == 1
    [event] = store.events()
    assert event.decision is Decision.NOT_RECOGNIZED


def test_an_unlocked_store_commits_at_once_and_flushes_older_denials_separately(store):
    recorder = DoorRecorder(store)
    rec = recorder.record(_grant("bob", DoorMode.VERIFY, claimed="bob"))
    assert rec.granted and rec.attempts == 1 and rec.error == ""
    [event] = store.events()
    assert (event.kind, event.decision, event.claimed, event.decided) == ("door", Decision.MATCH, "bob", "bob")
    recorder.close()
    recorder.close()  # idempotent


def test_an_in_memory_store_is_written_through_itself():
    from faceapp.store.repository import Store

    with Store("sqlite:///:memory:") as s:
        rec = DoorRecorder(s).record(_grant())
        assert rec.granted
        assert [e.id for e in s.events()] == [rec.event_id]


# -- retries and the budget, with a fake store and a fake clock ---------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


class FlakyStore:
    """log_event raises ``fail`` the first ``failures`` times (each failure takes ``cost`` s)."""

    def __init__(self, time: FakeTime, failures: int, fail=None, cost: float = 0.0) -> None:
        self.time, self.failures, self.cost = time, failures, cost
        self.fail = fail or StoreError("cannot write to database x: the database is locked by another faceapp process; try again")
        self.calls: list[tuple[str, dict]] = []

    def log_event(self, kind, **kw):
        from faceapp.types import Event

        self.calls.append((kind, kw))
        self.time.t += self.cost
        if len(self.calls) <= self.failures:
            raise self.fail
        return Event(len(self.calls), kw.get("time") or datetime.now(UTC), kind, kw["decision"], kw["claimed"],
                     kw["decided"], kw["distance"], kw["threshold"], kw["detail"])


def test_transient_failures_are_retried_with_growing_backoff():
    ft = FakeTime()
    store = FlakyStore(ft, failures=2)
    rec = DoorRecorder(store, budget_s=2.0, backoff_s=0.05, clock=ft.clock, sleep=ft.sleep).record(_grant())
    assert rec.granted and rec.attempts == 3 and rec.event_id == 3
    assert ft.sleeps == [pytest.approx(0.05), pytest.approx(0.10)]


def test_the_budget_bounds_the_attempts():
    ft = FakeTime()
    store = FlakyStore(ft, failures=10**6, cost=0.3)  # every attempt waits 0.3 s and fails
    recorder = DoorRecorder(store, budget_s=1.0, backoff_s=0.05, max_attempts=100, clock=ft.clock, sleep=ft.sleep)
    rec = recorder.record(_grant())
    assert rec.outcome.decision is Decision.LOG_UNAVAILABLE and not rec.granted
    assert 2 <= rec.attempts <= 4
    assert ft.t <= 1.0 + 0.3 + 1e-9  # no attempt starts once the budget is spent
    assert all(kw["decision"] is Decision.MATCH for _, kw in store.calls)  # only the grant was tried


def test_an_unexpected_error_is_not_retried_and_never_grants():
    ft = FakeTime()
    store = FlakyStore(ft, failures=1, fail=RuntimeError("driver bug"))
    rec = DoorRecorder(store, clock=ft.clock, sleep=ft.sleep).record(_grant())
    assert rec.outcome.decision is Decision.LOG_UNAVAILABLE and rec.attempts == 1
    assert "RuntimeError: driver bug" in rec.error


# -- the offline outbox takes only what an unreachable server could not log ------------------------
class Outbox:
    """Stands in for the door's OfflineCache: what was queued."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def enqueue(self, kind, **fields):
        self.items.append(fields)
        return f"door-{len(self.items)}"


def _db_error(orig: BaseException, *, invalidated: bool = False) -> StoreError:
    """A StoreError as the store raises it: from SQLAlchemy's error around the driver's."""
    from sqlalchemy.exc import OperationalError

    err = StoreError(f"cannot write to database postgresql://door@db/faceapp: {orig}")
    err.__cause__ = OperationalError("INSERT INTO events ...", {}, orig, connection_invalidated=invalidated)
    return err


def _refused():
    import psycopg

    return _db_error(psycopg.OperationalError('connection failed: connection to server at "10.0.0.5", port 5432 '
                                              "failed: Connection refused"))


def _lost():
    import psycopg

    return _db_error(psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
                     invalidated=True)


@pytest.mark.parametrize("error", [_refused, _lost], ids=["refused", "connection-lost"])
def test_with_an_outbox_an_unreachable_server_queues_the_grant(error):
    ft, outbox = FakeTime(), Outbox()
    store = FlakyStore(ft, failures=10**6, fail=error())
    recorder = DoorRecorder(store, budget_s=0.2, backoff_s=0.05, clock=ft.clock, sleep=ft.sleep, offline=outbox)
    rec = recorder.record(_grant())
    assert rec.granted and rec.queued_uid == "door-1" and len(outbox.items) == 1


def _permission_denied():
    import psycopg

    return _db_error(psycopg.errors.InsufficientPrivilege("permission denied for table events"))


def _lock_timeout():
    import psycopg

    return _db_error(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"))


@pytest.mark.parametrize("error", [_permission_denied, _lock_timeout,
                                   lambda: StoreError("the access log was altered and nothing more is logged to it"),
                                   lambda: TypeError("log_event() got an unexpected keyword argument 'uid'")],
                         ids=["permission-denied", "lock-timeout", "log-altered", "bug"])
def test_with_an_outbox_a_failure_that_is_not_the_connection_denies_and_queues_nothing(error, caplog):
    # the server answered and refused the write (or the door's own code failed): "offline" would
    # open the door indefinitely, and the outbox would never drain
    ft, outbox = FakeTime(), Outbox()
    store = FlakyStore(ft, failures=10**6, fail=error())
    recorder = DoorRecorder(store, budget_s=0.2, backoff_s=0.05, clock=ft.clock, sleep=ft.sleep, offline=outbox)
    rec = recorder.record(_grant())
    assert not rec.granted and rec.outcome.decision is Decision.LOG_UNAVAILABLE
    assert rec.queued_uid is None and outbox.items == []
    assert "not queued" in rec.outcome.detail and "withheld, access denied" in caplog.text


def test_budget_and_attempts_must_be_positive():
    with pytest.raises(ValueError):
        DoorRecorder(object(), budget_s=0)
    with pytest.raises(ValueError):
        DoorRecorder(object(), max_attempts=0)


# -- the new decision everywhere decisions become words or exit codes ---------------------------
def test_log_unavailable_is_a_denial_with_its_own_exit_code_and_words():
    from faceapp.cli.exit_codes import DECISION_EXIT, Exit

    assert not Decision.LOG_UNAVAILABLE.granted
    assert DECISION_EXIT[Decision.LOG_UNAVAILABLE] is Exit.DATABASE


def test_the_door_screen_words_say_the_log_is_unavailable():
    from faceapp.door_log import DoorRecord, withheld
    from faceapp.gui.messages import DECISION_TEXT, outcome_reason, record_reason

    now = datetime.now(UTC)
    denial = withheld(_grant(), "locked")
    assert outcome_reason(denial) == "Access log unavailable - access denied"
    assert DECISION_TEXT[Decision.LOG_UNAVAILABLE] == "Access log unavailable"
    assert record_reason(DoorRecord(denial, _grant(), None, now, error="locked")) == outcome_reason(denial)
    unlogged = record_reason(DoorRecord(_denial(), _denial(), None, now, error="locked"))
    assert unlogged.startswith("Not recognized") and "Access log unavailable" in unlogged  # never silent
    assert record_reason(DoorRecord(_denial(), _denial(), object(), now)) == "Not recognized"


@pytest.mark.datasets
def test_the_cli_verify_fails_with_exit_9_when_its_event_cannot_be_written(capsys, monkeypatch, db_url, lfw_image):
    from faceapp.cli.main import main
    from faceapp.store.repository import Store

    assert main(["enroll", "George_W_Bush", str(lfw_image("George_W_Bush", 1)), "--db", db_url, "--device", "cpu"]) == 0
    capsys.readouterr()

    def locked(self, kind, **kw):
        raise StoreError(f"cannot write to database {self.url}: the database is locked by another faceapp process; try again")

    monkeypatch.setattr(Store, "log_event", locked)
    code = main(["verify", "George_W_Bush", str(lfw_image("George_W_Bush", 2)), "--db", db_url, "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 9
    assert "MATCH" not in out.out and "locked" in out.err
