"""Repeats at the door: a person let in is not let in (and logged) again every few seconds.

A :class:`DoorMachine` makes one decision per attempt and resets after ``door_reset_s``; a
person who stays in front of the camera starts a new attempt at once. :class:`DoorCooldown`
sits between the machine's decision and the recorder (one instance per door):

- a **grant** of a person who was let in at this door less than ``cooldown_s`` ago is a
  ``REPEAT_GRANT``: shown as welcome, but the lock does not open, no output runs and nothing is
  logged. The cooldown runs from the grant that opened the lock (not from the repeats), so a
  person is let in at most once per ``cooldown_s``;
- in recognize mode, an unrecognized face or a timeout less than ``attempt_window_s`` after
  one was logged is a ``QUIET_DENIAL``: shown as denied, not logged one by one; the next one
  that is logged says in its detail how many were held back (the log keeps the count);
- everything else is ``LOG``: recorded as usual (verify-mode claims, liveness failures and
  grants outside the cooldown are always logged).

The call sequence (the GUI door page and the headless door alike)::

    verdict = cooldown.admit(outcome)          # when the machine decides (state.decided_now)
    if verdict.log:
        record = recorder.record(verdict.outcome)   # the outcome, maybe with a note in its detail
        dispatch = outputs.dispatch(record)         # unlock only if record.granted
        cooldown.settle(verdict, record, dispatch)  # a withheld grant, or an unreachable lock, starts no cooldown
    else:
        ... show verdict.outcome; no event, no output (verdict.repeat_of_s: seconds since the logged one)

    # on each tick, and with final=True when the door stops:
    report = cooldown.quiet_report()
    if report is not None:
        store.log_event(QUIET_EVENT, detail=report.detail)  # on failure: cooldown.unreport(report)

Qt-free; ``clock`` is ``time.monotonic`` unless a test passes a fake.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faceapp.door import DoorMode, DoorOutcome
from faceapp.types import Decision

# Denials that a face staying in front of the camera repeats by itself (recognize mode).
QUIET_DECISIONS = frozenset({Decision.NOT_RECOGNIZED, Decision.TIMEOUT})
QUIET_EVENT = "door_quiet_denials"  # the event kind of a quiet report
QUIET_REPORT_S = 300.0  # held-back denials are reported at least this often (a long window)
QUIET_REPORT_MAX = 100  # ... or once this many are held back
QUIET_RETRY_S = 10.0  # a report that could not be logged is tried again after this long


class Admission(str, enum.Enum):
    LOG = "log"  # record it (and on a committed grant, open the lock)
    REPEAT_GRANT = "repeat_grant"  # welcome on screen; no unlock, no event
    QUIET_DENIAL = "quiet_denial"  # denied on screen; no event (counted into the next logged one)


@dataclass(frozen=True)
class CooldownVerdict:
    admission: Admission
    outcome: DoorOutcome  # LOG: the outcome to record; else the outcome to show
    repeat_of_s: float | None = None  # REPEAT_GRANT / QUIET_DENIAL: seconds since the logged one
    held_back: int = 0  # LOG: how many quiet denials this one reports

    @property
    def log(self) -> bool:
        return self.admission is Admission.LOG

    @property
    def repeat(self) -> bool:
        return self.admission is Admission.REPEAT_GRANT


@dataclass(frozen=True)
class QuietReport:
    """Quiet denials not reported by a logged one: ``count`` of them, over ``span_s`` seconds
    after the logged one; ``detail`` is the event's text."""

    count: int
    span_s: float
    detail: str


class DoorCooldown:
    """The cooldown of one door (see the module doc). ``cooldown_s`` / ``attempt_window_s``:
    0 turns that part off."""

    def __init__(
        self,
        *,
        cooldown_s: float = 30.0,
        attempt_window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cooldown_s < 0 or attempt_window_s < 0:
            raise ValueError(f"cooldown_s and attempt_window_s must be >= 0 (got {cooldown_s}, {attempt_window_s})")
        self.cooldown_s = float(cooldown_s)
        self.attempt_window_s = float(attempt_window_s)
        self.clock = clock
        self._granted: dict[str, float] = {}  # casefolded name -> when the lock was opened for them
        self._quiet_since: float | None = None  # when the last unrecognized face / timeout was logged
        self._held_back = 0
        self._reported_at: float | None = None  # the last quiet report (or the logged denial before it)
        self._retry_at: float | None = None  # a report that failed: not before this

    @classmethod
    def from_settings(cls, settings: Any, *, clock: Callable[[], float] = time.monotonic) -> DoorCooldown:
        return cls(cooldown_s=settings.door_cooldown_s, attempt_window_s=settings.door_attempt_window_s, clock=clock)

    def admit(self, outcome: DoorOutcome) -> CooldownVerdict:
        """What to do with a decision the machine just made."""
        now = self.clock()
        if outcome.granted and outcome.name:
            key = outcome.name.casefold()
            last = self._granted.get(key)
            if last is not None and now - last < self.cooldown_s:
                return CooldownVerdict(Admission.REPEAT_GRANT, outcome, repeat_of_s=now - last)
            self._granted[key] = now  # taken back by settle() if the grant is withheld
            return CooldownVerdict(Admission.LOG, outcome)
        if outcome.mode is DoorMode.RECOGNIZE and outcome.decision in QUIET_DECISIONS and self.attempt_window_s > 0:
            if self._quiet_since is not None and now - self._quiet_since < self.attempt_window_s:
                self._held_back += 1
                return CooldownVerdict(Admission.QUIET_DENIAL, outcome, repeat_of_s=now - self._quiet_since)
            self._quiet_since = self._reported_at = now
            held, self._held_back = self._held_back, 0
            if held:
                note = (f"; {held} more unrecognized face(s) or timeout(s) at this door in the "
                        f"{self.attempt_window_s:g} s before were not logged one by one")
                outcome = dataclasses.replace(outcome, detail=outcome.detail + note)
            return CooldownVerdict(Admission.LOG, outcome, held_back=held)
        return CooldownVerdict(Admission.LOG, outcome)

    def settle(self, verdict: CooldownVerdict, record: Any, dispatch: Any = None) -> None:
        """After the recorder and the outputs: only a grant that let the person in starts the
        cooldown. A grant that was not let in (withheld, its event not committed) or whose lock
        could not be opened (``dispatch.lock_unreachable``: LOCK UNREACHABLE) starts none, so the
        person's next attempt tries the lock again instead of being welcomed at a shut door.
        ``record``: the :class:`faceapp.door_log.DoorRecord` (anything with ``granted``);
        ``dispatch``: the :class:`faceapp.outputs.Dispatch` (None: the door has no outputs)."""
        decided = verdict.outcome
        if not (verdict.log and decided.granted and decided.name):
            return
        if not getattr(record, "granted", False) or getattr(dispatch, "lock_unreachable", False):
            self._granted.pop(decided.name.casefold(), None)

    def quiet_report(self, *, final: bool = False) -> QuietReport | None:
        """The quiet denials held back, when their report is due (else None): the window after
        the logged one has closed (no later denial will carry the count), :data:`QUIET_REPORT_S`
        passed since the last report, :data:`QUIET_REPORT_MAX` are held back, or ``final`` (the
        door stops). The count is taken: log the report's detail as a :data:`QUIET_EVENT` event,
        or give it back with :meth:`unreport` when that fails."""
        held = self._held_back
        if not held:
            return None
        now = self.clock()
        if not final:
            if self._retry_at is not None and now < self._retry_at:
                return None
            since = self._quiet_since if self._quiet_since is not None else now
            last = self._reported_at if self._reported_at is not None else since
            if not (now - since >= self.attempt_window_s or now - last >= QUIET_REPORT_S or held >= QUIET_REPORT_MAX):
                return None
        span = now - self._quiet_since if self._quiet_since is not None else 0.0
        self._held_back, self._reported_at, self._retry_at = 0, now, None
        why = "the door stopped" if final else f"window of {self.attempt_window_s:g} s"
        detail = (f"{held} more unrecognized face(s) or timeout(s) at this door in the {span:.0f} s after the "
                  f"last one logged were not logged one by one ({why})")
        return QuietReport(held, span, detail)

    def unreport(self, report: QuietReport) -> None:
        """A report that could not be logged: its count is held back again (reported with the
        next one, tried again after :data:`QUIET_RETRY_S`)."""
        self._held_back += report.count
        self._retry_at = self.clock() + QUIET_RETRY_S

    def reset(self) -> None:
        """Forget who was let in and the quiet window (the settings changed, or the admin
        asked); quiet denials held back stay counted (reported by the next :meth:`quiet_report`)."""
        self._granted.clear()
        self._quiet_since = None
        self._reported_at = self._retry_at = None
