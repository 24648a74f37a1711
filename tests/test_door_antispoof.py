"""The door with presentation-attack detection (issue 16 item 3): every frame of an attempt is
scored; the attempt's verdict (the median live score once enough frames are scored) must be
LIVE for a grant, a SPOOF verdict denies at once, and it works with the liveness challenge
off. Hand-made frames and live scores; the real network is tested in test_antispoof.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from faceapp.antispoof import AntiSpoofAttempt
from faceapp.door import DoorHint, DoorPhase
from faceapp.pipeline import FaceObservation, FaceResult
from faceapp.types import AlignedFace, BBox, Decision, Detection, Landmarks, QualityIssue

sys.path.insert(0, str(Path(__file__).parent / "gui"))
from test_door_logic import ALICE, STRANGER, _face, frame, machine  # noqa: E402


class Scores:
    """A stand-in for the network: the live score of each frame, in order."""

    def __init__(self, *scores: float) -> None:
        self.scores = list(scores)

    def score(self, frame_rgb, bbox) -> float:
        return self.scores.pop(0) if len(self.scores) > 1 else self.scores[0]


def pad(*scores: float, min_frames: int = 3):
    return lambda: AntiSpoofAttempt(Scores(*scores), threshold=0.4, min_frames=min_frames)


def test_a_live_face_is_granted_once_the_verdict_is_live():
    m = machine(antispoof=pad(0.9, 0.8, 0.95))
    states = [m.feed(ALICE) for _ in range(3)]
    assert states[-1].outcome.decision is Decision.MATCH and states[-1].outcome.name == "alice"
    assert "median live score 0.900" in states[-1].outcome.detail


def test_a_screen_is_denied_as_spoof_even_for_an_enrolled_face():
    m = machine(antispoof=pad(0.1, 0.2, 0.05))
    states = [m.feed(ALICE) for _ in range(3)]
    assert states[-1].decided_now and states[-1].outcome.decision is Decision.SPOOF
    assert not states[-1].outcome.granted and "anti-spoofing" in states[-1].outcome.detail


def test_the_identity_waits_for_enough_scored_frames():
    m = machine(antispoof=pad(0.9, min_frames=5))
    states = [m.feed(ALICE) for _ in range(5)]
    assert [s.decided_now for s in states] == [False, False, False, False, True]
    assert states[-1].outcome.decision is Decision.MATCH


def test_a_stranger_is_denied_as_not_recognized_whatever_the_scores():
    m = machine(antispoof=pad(0.9))
    states = [m.feed(STRANGER) for _ in range(3)]
    assert states[-1].outcome.decision is Decision.NOT_RECOGNIZED



# -- the verdict covers only the frames that count for the decided identity (review #1) -----------
# A printed photo of alice held beside the attacker's own (live) face: frames with both faces, or
# with a live face too blurry to count, must not lend their live scores to the photo's frames.


class BySize:
    """A stand-in network that tells the faces apart by size: the large face (the attacker's own)
    is live, the small one (the photo) is not."""

    threshold = 0.4

    def score(self, frame_rgb, bbox) -> float:
        return 0.95 if bbox.area > 100 * 100 else 0.05


def _sized(box: BBox, candidates, issues=()):
    face = _face(candidates, issues)
    det = Detection(box, 0.99, Landmarks(np.zeros((5, 2))))
    aligned = AlignedFace(face.observation.aligned.image, det, np.eye(2, 3))
    return FaceResult(FaceObservation(aligned, face.observation.quality, face.observation.embedding),
                      face.candidates, face.threshold)


ATTACKER = _sized(BBox(0, 0, 300, 300), [("alice", 0.9)])
PHOTO = _sized(BBox(400, 0, 500, 100), [("alice", 0.2), ("bob", 0.9)])
BOTH = frame(ATTACKER, PHOTO)
PHOTO_ONLY = frame(PHOTO)
BLURRY_LIVE = frame(_sized(BBox(0, 0, 300, 300), [("alice", 0.9)], issues=[QualityIssue.BLURRY]))
LIVE_STRANGER = frame(_sized(BBox(0, 0, 300, 300), [("alice", 0.9)]))
LIVE_BOB = frame(_sized(BBox(0, 0, 300, 300), [("bob", 0.2), ("alice", 0.9)]))


def by_size(min_frames: int = 5):
    return lambda: AntiSpoofAttempt(BySize(), min_frames=min_frames)


def _until_decided(m, result, limit: int = 12):
    for _ in range(limit):
        s = m.feed(result)
        if s.decided_now:
            return s
    return s


def test_a_photo_alone_is_denied_as_spoof():
    s = _until_decided(machine(antispoof=by_size()), PHOTO_ONLY)
    assert s.phase is DoorPhase.DENIED and s.outcome.decision is Decision.SPOOF


def test_a_photo_beside_a_live_face_is_denied_as_spoof():
    # frames with two faces count for nobody, so their live scores do not count either
    m = machine(antispoof=by_size())
    for _ in range(6):
        assert m.feed(BOTH).hint is DoorHint.SEVERAL_PEOPLE
    s = _until_decided(m, PHOTO_ONLY)
    assert s.phase is DoorPhase.DENIED and s.outcome.decision is Decision.SPOOF
    assert "over 5 frames" in s.outcome.detail


def test_a_blurry_live_face_before_a_photo_lends_it_no_live_scores():
    m = machine(antispoof=by_size())
    for _ in range(6):
        m.feed(BLURRY_LIVE)
    s = _until_decided(m, PHOTO_ONLY)
    assert s.phase is DoorPhase.DENIED and s.outcome.decision is Decision.SPOOF


def test_live_frames_of_other_readings_do_not_count_for_the_identity():
    # the attacker's live face read as a stranger, then as bob, in runs too short to decide: a new
    # reading starts a new run, and the anti-spoofing scores start again with it
    m = machine(antispoof=by_size())
    for result in (LIVE_STRANGER, LIVE_STRANGER, LIVE_BOB, LIVE_BOB, LIVE_STRANGER, LIVE_STRANGER):
        assert not m.feed(result).decided_now
    s = _until_decided(m, PHOTO_ONLY)
    assert s.phase is DoorPhase.DENIED and s.outcome.decision is Decision.SPOOF


def test_a_frame_that_does_not_count_drops_the_confirmed_identity():
    m = machine(antispoof=pad(0.9, min_frames=5))
    for _ in range(3):
        s = m.feed(ALICE)
    assert s.confirmed and not s.decided_now  # waits for five scored frames
    s = m.feed(BLURRY_LIVE)
    assert not s.confirmed and s.streak == 0
    states = [m.feed(ALICE) for _ in range(5)]  # the five frames are scored again, on alice alone
    assert [x.decided_now for x in states] == [False, False, False, False, True]
    assert states[-1].outcome.decision is Decision.MATCH and "over 5 frames" in states[-1].outcome.detail


# -- attempts that end without a decision (review 2 item 4) ------------------------------------
def test_a_photo_lowered_before_the_verdict_is_reported_as_abandoned():
    # the photo of alice reaches a confirmed identity, then is lowered before the verdict (SPOOF
    # at frame 5): the attempt must not vanish quietly after a few empty frames
    from test_door_logic import NOBODY

    m = machine(antispoof=pad(0.05, min_frames=5))
    states = [m.feed(ALICE) for _ in range(4)]
    assert states[-1].confirmed and not any(s.decided_now for s in states)
    states = [m.feed(NOBODY) for _ in range(3)]
    assert states[-1].phase is DoorPhase.WAITING and not any(s.decided_now for s in states)
    reports = [s.abandoned for s in states if s.abandoned is not None]
    assert len(reports) == 1  # once, in the state of the call that dropped it
    report = reports[0]
    assert report.name == "alice" and report.frames == 4 and report.confirmed and report.reading is Decision.MATCH
    assert "recognize attempt abandoned (face gone) after 4 agreeing frame(s) of 3 (match alice, confirmed)" \
        in report.detail
    assert m.state.abandoned is None and m.feed(NOBODY).abandoned is None


def test_a_passer_by_without_agreeing_frames_is_dropped_quietly():
    from test_door_logic import NOBODY

    m = machine()
    states = [m.feed(STRANGER)] + [m.feed(NOBODY) for _ in range(3)]
    assert states[-1].phase is DoorPhase.WAITING and all(s.abandoned is None for s in states)
    # nor is one stranger who was read a few times (no name, no identity confirmed)
    states = [m.feed(STRANGER), m.feed(STRANGER)] + [m.feed(NOBODY) for _ in range(3)]
    assert states[-1].phase is DoorPhase.WAITING and all(s.abandoned is None for s in states)
    # one frame of a name is no agreement either
    states = [m.feed(ALICE)] + [m.feed(NOBODY) for _ in range(3)]
    assert all(s.abandoned is None for s in states)


def test_a_cancelled_or_switched_attempt_with_agreeing_frames_is_reported_once():
    from faceapp.door import DoorMode

    m = machine(antispoof=pad(0.9, min_frames=5))
    m.feed(ALICE), m.feed(ALICE)
    state = m.cancel("Esc")
    assert state.abandoned is not None and state.phase is DoorPhase.WAITING
    assert "recognize attempt cancelled (Esc) after 2 agreeing frame(s) of 3 (match alice)" in state.abandoned.detail
    assert m.cancel("Esc").abandoned is None  # nothing running: nothing more
    m.feed(ALICE), m.feed(ALICE), m.feed(ALICE)
    state = m.set_mode(DoorMode.VERIFY)
    assert state.abandoned is not None and state.abandoned.confirmed
    assert "attempt cancelled (mode switched to verify)" in state.abandoned.detail
    assert m.cancel().abandoned is None


def test_a_timeout_after_agreeing_frames_names_the_reading_it_had():
    from test_door_logic import NOBODY, Clock

    clock = Clock()
    m = machine(clock=clock, antispoof=pad(0.9, min_frames=5))
    for _ in range(3):
        m.feed(ALICE)
    m.feed(frame(_face([("alice", 0.2)], issues=(QualityIssue.BLURRY,))))  # the run breaks, the face stays
    clock.t += 9.0
    state = m.feed(NOBODY)
    assert state.decided_now and state.outcome.decision is Decision.TIMEOUT and state.outcome.name is None
    assert state.abandoned is not None and state.abandoned.name == "alice" and state.abandoned.frames == 3
    assert "3 agreeing frame(s) of 3 (match alice, confirmed)" in state.outcome.detail


def test_the_time_limit_runs_from_an_attempt_started_at_time_zero():
    # the headless door's video time starts at 0.0: an attempt started then must time out too
    from test_door_logic import Clock

    clock = Clock()
    clock.t = 0.0
    m = machine(clock=clock)
    m.feed(frame(_face([("alice", 0.2)], issues=(QualityIssue.BLURRY,))))
    clock.t = 9.0
    state = m.tick()
    assert state.decided_now and state.outcome.decision is Decision.TIMEOUT
    clock.t = 13.0
    assert m.tick().phase is DoorPhase.WAITING  # and the outcome shown at 9.0 resets
