"""The door's re-entry cooldown on hand-made outcomes and a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from faceapp.door import DoorMode, DoorOutcome
from faceapp.door_cooldown import Admission, DoorCooldown
from faceapp.types import Decision


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Record:  # what settle() reads of a faceapp.door_log.DoorRecord
    granted: bool


def grant(name="alice", mode=DoorMode.RECOGNIZE):
    return DoorOutcome(Decision.MATCH, mode, name if mode is DoorMode.VERIFY else None, name, 0.05, 0.15, 3)


def stranger(decision=Decision.NOT_RECOGNIZED, mode=DoorMode.RECOGNIZE, claimed=None):
    return DoorOutcome(decision, mode, claimed, None, 0.6, 0.15, 3, detail="recognize: 3 consecutive frames agreed")


@pytest.fixture
def clock():
    return Clock()


def test_a_person_let_in_is_welcomed_but_not_let_in_again_within_the_cooldown(clock):
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock)
    first = cd.admit(grant())
    assert first.admission is Admission.LOG
    cd.settle(first, Record(granted=True))
    clock.t += 5  # the reset, then the same person again
    again = cd.admit(grant())
    assert again.admission is Admission.REPEAT_GRANT and not again.log
    assert again.repeat_of_s == pytest.approx(5.0)
    clock.t += 20
    assert cd.admit(grant("ALICE")).repeat  # names ignore case, as the store does
    clock.t += 5.5  # 30.5 s after the grant that opened the lock: the cooldown runs from it, not from repeats
    assert cd.admit(grant()).admission is Admission.LOG


def test_another_person_is_let_in_during_someone_elses_cooldown(clock):
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock)
    cd.settle(cd.admit(grant("alice")), Record(True))
    clock.t += 2
    assert cd.admit(grant("bob")).log


def test_a_grant_that_was_withheld_starts_no_cooldown(clock):
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock)
    first = cd.admit(grant())
    cd.settle(first, Record(granted=False))  # the access log was unavailable: the door stayed shut
    clock.t += 5
    assert cd.admit(grant()).log  # the next attempt can open the lock


def test_a_stranger_who_stays_is_logged_once_per_window_with_the_count(clock):
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=20, clock=clock)
    verdicts = []
    for _ in range(5):  # every 4.5 s: a decision, the reset, a new attempt
        verdicts.append(cd.admit(stranger()))
        clock.t += 4.5
    assert [v.admission for v in verdicts] == [Admission.LOG] + [Admission.QUIET_DENIAL] * 4
    clock.t = 1000.0 + 20.0
    nxt = cd.admit(stranger(Decision.TIMEOUT))
    assert nxt.log and nxt.held_back == 4
    assert "4 more unrecognized face(s) or timeout(s)" in nxt.outcome.detail
    assert nxt.outcome.detail.startswith("recognize: 3 consecutive frames agreed")
    clock.t += 1
    assert not cd.admit(stranger()).log


def test_verify_claims_and_liveness_failures_are_always_logged(clock):
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock)
    for _ in range(3):
        assert cd.admit(stranger(Decision.NO_MATCH, DoorMode.VERIFY, claimed="alice")).log
        assert cd.admit(stranger(Decision.TIMEOUT, DoorMode.VERIFY, claimed="alice")).log
        assert cd.admit(stranger(Decision.SPOOF)).log
        clock.t += 1


def test_zero_turns_each_part_off(clock):
    cd = DoorCooldown(cooldown_s=0, attempt_window_s=0, clock=clock)
    for _ in range(3):
        v = cd.admit(grant())
        cd.settle(v, Record(True))
        assert v.log
        assert cd.admit(stranger()).log


def test_from_settings_and_reset(clock):
    from faceapp.config import Settings

    cd = DoorCooldown.from_settings(Settings(door_cooldown_s=10.0, door_attempt_window_s=5.0), clock=clock)
    assert (cd.cooldown_s, cd.attempt_window_s) == (10.0, 5.0)
    cd.settle(cd.admit(grant()), Record(True))
    cd.reset()
    assert cd.admit(grant()).log
    with pytest.raises(ValueError):
        DoorCooldown(cooldown_s=-1)


@dataclass
class Dispatched:  # what settle() reads of a faceapp.outputs.Dispatch
    lock_unreachable: bool


def test_a_grant_whose_lock_was_unreachable_starts_no_cooldown(clock):
    # LOCK UNREACHABLE: the person's next attempt must try the lock again, not be welcomed at a shut door
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock)
    cd.settle(cd.admit(grant()), Record(granted=True), Dispatched(lock_unreachable=True))
    clock.t += 5
    again = cd.admit(grant())
    assert again.log
    cd.settle(again, Record(granted=True), Dispatched(lock_unreachable=False))  # the lock opened this time
    clock.t += 5
    assert cd.admit(grant()).repeat
    cd.settle(cd.admit(grant("bob")), Record(granted=True), None)  # a door without a lock output
    clock.t += 5
    assert cd.admit(grant("bob")).repeat


def test_quiet_denials_are_reported_when_their_window_closes(clock):
    # 20 stranger attempts 1.4 s apart, then the stranger leaves: the log must account for all 20
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock)
    logged = 0
    for _ in range(20):
        logged += cd.admit(stranger()).log
        clock.t += 1.4
    assert logged == 1
    assert cd.quiet_report() is None  # the window (30 s from the logged one) is still open
    clock.t = 1000.0 + 30.0
    report = cd.quiet_report()
    assert report is not None and report.count == 19
    assert "19 more unrecognized face(s) or timeout(s)" in report.detail
    assert cd.quiet_report() is None and cd.quiet_report(final=True) is None  # reported once
    clock.t += 1
    nxt = cd.admit(stranger())
    assert nxt.log and nxt.held_back == 0  # the next logged one does not count them again


def test_quiet_denials_are_reported_at_stop_and_at_least_every_few_minutes(clock):
    from faceapp.door_cooldown import QUIET_REPORT_MAX, QUIET_REPORT_S

    cd = DoorCooldown(cooldown_s=30, attempt_window_s=3600, clock=clock)
    assert cd.admit(stranger()).log
    for _ in range(3):
        clock.t += 2
        cd.admit(stranger())
    assert cd.quiet_report() is None
    stop = cd.quiet_report(final=True)  # the door stops: whatever is held back is reported now
    assert stop.count == 3 and "the door stopped" in stop.detail
    reported, first_at, start = 0, None, clock.t
    for _ in range(int(2 * QUIET_REPORT_S / 10)):  # a long window: still a report every few minutes
        clock.t += 10
        assert not cd.admit(stranger()).log
        report = cd.quiet_report()
        if report is not None:
            reported += report.count
            first_at = clock.t if first_at is None else first_at
    assert first_at is not None and first_at - start <= QUIET_REPORT_S + 10
    rest = cd.quiet_report(final=True)
    assert reported + (rest.count if rest else 0) == int(2 * QUIET_REPORT_S / 10)  # every attempt, once
    for _ in range(QUIET_REPORT_MAX):  # many quick ones: reported once there are that many
        clock.t += 0.1
        cd.admit(stranger())
    assert cd.quiet_report().count == QUIET_REPORT_MAX


def test_a_quiet_report_that_could_not_be_logged_is_counted_again(clock):
    cd = DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock)
    cd.admit(stranger())
    clock.t += 2
    cd.admit(stranger())
    report = cd.quiet_report(final=True)
    cd.unreport(report)  # the store refused: kept for the next report
    clock.t += 1
    cd.admit(stranger())
    assert cd.quiet_report(final=True).count == 2
