"""faceapp.door: the door's state machine, fed hand-made frame results and a fake clock (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.door import DoorHint, DoorMachine, DoorMode, DoorPhase, log_outcome, read_frame
from faceapp.pipeline import FaceObservation, FaceResult, FrameResult
from faceapp.types import AlignedFace, BBox, Candidate, Decision, Detection, Landmarks, QualityIssue, QualityReport

TAU = 0.36


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _face(candidates=(), issues=(), embedding=(1.0, 0.0)) -> FaceResult:
    det = Detection(BBox(0, 0, 100, 100), 0.99, Landmarks(np.zeros((5, 2))))
    aligned = AlignedFace(np.zeros((150, 150, 3), np.uint8), det, np.eye(2, 3))
    quality = QualityReport(100.0, 120.0, 80.0, 0.99, tuple(issues))
    obs = FaceObservation(aligned, quality, np.asarray(embedding, np.float32))
    return FaceResult(obs, tuple(Candidate(n, d) for n, d in candidates), TAU)


def frame(*faces: FaceResult, far: bool = False) -> FrameResult:
    dets = tuple(f.observation.detection for f in faces)
    if far and not faces:
        dets = (Detection(BBox(0, 0, 12, 12), 0.95, Landmarks(np.zeros((5, 2)))),)
    return FrameResult(0, np.zeros((4, 4, 3), np.uint8), tuple(faces), {}, dets)


ALICE = frame(_face([("alice", 0.20), ("bob", 0.90)]))
BOB = frame(_face([("bob", 0.25), ("alice", 0.80)]))
STRANGER = frame(_face([("alice", 0.70)]))
NOBODY = frame()


def machine(mode=DoorMode.RECOGNIZE, clock=None, **kw) -> DoorMachine:
    kw.setdefault("frames_needed", 3)
    kw.setdefault("timeout_s", 8.0)
    kw.setdefault("reset_s", 4.0)
    return DoorMachine(mode, threshold=TAU, clock=clock or Clock(), **kw)


def test_recognize_grants_after_three_agreeing_frames_and_not_before():
    m = machine()
    states = [m.feed(ALICE) for _ in range(3)]
    assert [s.phase for s in states] == [DoorPhase.WATCHING, DoorPhase.WATCHING, DoorPhase.GRANTED]
    assert [s.decided_now for s in states] == [False, False, True]
    out = states[-1].outcome
    assert (out.decision, out.name, out.frames) == (Decision.MATCH, "alice", 3)
    assert out.distance == pytest.approx(0.20)


def test_recognize_denies_a_stranger_with_the_nearest_distance():
    m = machine()
    for _ in range(3):
        s = m.feed(STRANGER)
    assert s.phase is DoorPhase.DENIED
    assert (s.outcome.decision, s.outcome.name) == (Decision.NOT_RECOGNIZED, None)
    assert s.outcome.distance == pytest.approx(0.70)


def test_a_different_person_in_the_middle_restarts_the_count():
    m = machine()
    m.feed(ALICE)
    m.feed(ALICE)
    assert m.feed(BOB).streak == 1
    m.feed(BOB)
    s = m.feed(BOB)
    assert s.outcome.name == "bob"


def test_a_frame_without_a_usable_face_breaks_the_run_and_says_why():
    m = machine()
    m.feed(ALICE)
    m.feed(ALICE)
    s = m.feed(frame(_face([("alice", 0.2)], issues=[QualityIssue.TOO_DARK])))
    assert (s.phase, s.streak, s.hint) == (DoorPhase.WATCHING, 0, DoorHint.TOO_DARK)
    assert m.feed(ALICE).streak == 1


@pytest.mark.parametrize(
    ("result", "hint"),
    [
        (frame(_face(), _face()), DoorHint.SEVERAL_PEOPLE),
        (frame(_face(issues=[QualityIssue.TOO_SMALL, QualityIssue.BLURRY])), DoorHint.TOO_FAR),
        (frame(_face(issues=[QualityIssue.BLURRY])), DoorHint.BLURRY),
        (frame(far=True), DoorHint.TOO_FAR),
        (NOBODY, DoorHint.NO_FACE),
    ],
)
def test_each_unusable_frame_gets_its_message(result, hint):
    assert read_frame(result, DoorMode.RECOGNIZE, threshold=TAU).hint is hint


def test_recognize_waits_for_a_face_and_never_times_out_on_an_empty_frame():
    clock = Clock()
    m = machine(clock=clock)
    for _ in range(5):
        clock.t += 10
        s = m.feed(NOBODY)
    assert (s.phase, s.hint, s.outcome) == (DoorPhase.WAITING, DoorHint.LOOK_AT_CAMERA, None)


def test_a_passer_by_is_dropped_quietly_when_the_face_leaves():
    m = machine()
    m.feed(ALICE)
    states = [m.feed(NOBODY) for _ in range(3)]  # as many empty frames as a decision needs
    assert [s.phase for s in states] == [DoorPhase.WATCHING, DoorPhase.WATCHING, DoorPhase.WAITING]
    assert states[-1].outcome is None


def test_no_agreement_within_the_time_limit_is_a_timeout_denial():
    clock = Clock()
    m = machine(clock=clock)
    too_dark = frame(_face(issues=[QualityIssue.TOO_DARK]))
    m.feed(too_dark)  # the attempt starts at t=100
    clock.t += 7.9
    assert m.feed(too_dark).phase is DoorPhase.WATCHING
    clock.t += 0.1
    s = m.tick()
    assert s.decided_now and s.phase is DoorPhase.DENIED
    assert s.outcome.decision is Decision.TIMEOUT
    assert "too dark" in s.outcome.detail


def test_the_outcome_stays_for_reset_s_ignores_frames_then_resets():
    clock = Clock()
    m = machine(clock=clock)
    for _ in range(3):
        m.feed(ALICE)
    clock.t += 3.9
    s = m.feed(STRANGER)
    assert s.phase is DoorPhase.GRANTED and not s.decided_now
    assert s.remaining_s == pytest.approx(0.1)
    clock.t += 0.1
    assert m.tick().phase is DoorPhase.WAITING


def test_exactly_one_decision_per_attempt():
    m = machine(frames_needed=2)
    decided = sum(m.feed(ALICE).decided_now for _ in range(10))
    assert decided == 1


def test_verify_ignores_frames_until_a_name_is_claimed():
    m = machine(DoorMode.VERIFY, distance_to=lambda name, emb: 0.1)
    s = m.feed(ALICE)
    assert (s.phase, s.hint) == (DoorPhase.WAITING, DoorHint.ENTER_NAME)


def test_verify_grants_the_claimed_person_by_distance_to_them():
    seen = []

    def distance_to(name, emb):
        seen.append(name)
        return 0.30

    m = machine(DoorMode.VERIFY, distance_to=distance_to)
    m.claim(" bob ")
    for _ in range(3):
        s = m.feed(frame(_face([("bob", 0.30), ("alice", 0.80)])))
    assert seen == ["bob"] * 3
    assert (s.outcome.decision, s.outcome.claimed, s.outcome.name) == (Decision.MATCH, "bob", "bob")


def test_verify_denies_a_face_nearer_to_someone_else_than_to_the_claimed_person():
    """Anyone can claim any name (the door even suggests them), so a face within tau of the
    claimed person is not theirs when another enrolled person is nearer: Alice claiming Bob."""
    m = machine(DoorMode.VERIFY, distance_to=lambda name, emb: 0.30)
    m.claim("bob")
    for _ in range(3):
        s = m.feed(ALICE)  # alice 0.20 is nearer than bob's 0.30 (within tau)
    assert (s.outcome.decision, s.outcome.name, s.outcome.claimed) == (Decision.NO_MATCH, None, "bob")


def test_verify_judges_the_claim_by_the_threshold_for_the_gallery_size():
    """A stranger can claim whoever they resemble most, so a claim is as safe as a 1:K search
    only with the 1:K threshold for the gallery's size (from the per-attempt FAR target)."""
    rule = OpenSetRule(_curve(), attempt_far=1e-2, margin=0.0, cap=TAU)
    close = frame(_face([("alice", 0.12), ("bob", 0.60)]))
    assert rule.threshold(1000) < 0.12 < rule.threshold(10)
    for people, decision in ((10, Decision.MATCH), (1000, Decision.NO_MATCH)):
        m = machine(DoorMode.VERIFY, distance_to=lambda name, emb: 0.12, recognize_rule=rule)
        m.claim("alice")
        for _ in range(3):
            s = m.feed(sized(close, people))
        assert s.outcome.decision is decision
        assert s.outcome.threshold == pytest.approx(rule.threshold(people))


def test_verify_denies_when_the_distance_is_above_the_threshold():
    m = machine(DoorMode.VERIFY, distance_to=lambda name, emb: TAU + 0.01)
    m.claim("alice")
    for _ in range(3):
        s = m.feed(ALICE)
    assert (s.outcome.decision, s.outcome.name, s.outcome.claimed) == (Decision.NO_MATCH, None, "alice")


def test_verify_times_out_from_the_claim_even_without_frames():
    clock = Clock()
    m = machine(DoorMode.VERIFY, clock=clock, distance_to=lambda n, e: 0.1)
    m.claim("alice")
    clock.t += 8.0
    s = m.tick()
    assert s.decided_now and s.outcome.decision is Decision.TIMEOUT and s.outcome.claimed == "alice"


def test_claim_is_refused_in_recognize_mode_and_when_empty():
    with pytest.raises(ValueError):
        machine().claim("alice")
    with pytest.raises(ValueError):
        machine(DoorMode.VERIFY, distance_to=lambda n, e: 0.1).claim("  ")


def test_switching_mode_drops_the_attempt():
    m = machine()
    m.feed(ALICE)
    s = m.set_mode(DoorMode.VERIFY)
    assert (s.phase, s.mode, s.streak) == (DoorPhase.WAITING, DoorMode.VERIFY, 0)


def test_log_outcome_writes_one_door_event():
    class FakeStore:
        def __init__(self):
            self.calls = []

        def log_event(self, kind, **kw):
            self.calls.append((kind, kw))

    m = machine()
    for _ in range(3):
        s = m.feed(ALICE)
    store = FakeStore()
    log_outcome(store, s.outcome)
    [(kind, kw)] = store.calls
    assert kind == "door"
    assert (kw["decision"], kw["decided"], kw["threshold"]) == (Decision.MATCH, "alice", TAU)


def test_settle_shows_the_recorded_outcome_for_the_full_reset_time():
    import dataclasses

    clock = Clock()
    m = machine(clock=clock)
    for _ in range(3):
        s = m.feed(ALICE)
    assert s.phase is DoorPhase.GRANTED
    clock.t += 1.5  # the event was being committed
    denied = dataclasses.replace(s.outcome, decision=Decision.LOG_UNAVAILABLE, name=None)
    settled = m.settle(denied)
    assert (settled.phase, settled.outcome) == (DoorPhase.DENIED, denied)
    assert settled.remaining_s == pytest.approx(4.0)
    clock.t += 3.9
    assert m.tick().phase is DoorPhase.DENIED
    clock.t += 0.2
    assert m.tick().phase is DoorPhase.WAITING
    assert m.settle(denied).phase is DoorPhase.WAITING  # nothing shown: nothing to settle


# -- liveness at the door (the challenge runs on the attempt's frames) ----------------------------
from faceapp.door import liveness_factory  # noqa: E402
from faceapp.landmarks.liveness import ChallengeKind, LivenessConfig, LivenessSession  # noqa: E402
from faceapp.landmarks.pose import camera_matrix, project_model, rotation_from_angles  # noqa: E402

SIZE = (640, 480)
K = camera_matrix(SIZE)


def head(yaw=0.0) -> np.ndarray:
    """A real (3-D) head's 68 landmarks in a 640x480 picture."""
    return project_model(rotation_from_angles(yaw, 0.0, 0.0), camera=K)


def tilted_photo(points: np.ndarray, tilt_deg: float) -> np.ndarray:
    """``points`` printed on a flat card 500 mm from the camera, the card turned about its vertical axis."""
    xy = (points - K[:2, 2]) / K[0, 0] * 500.0
    plane = np.c_[xy, np.zeros(len(xy))]
    centre = plane.mean(axis=0)
    a = np.radians(tilt_deg)
    r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    world = (plane - centre) @ r.T + centre + np.array([0.0, 0.0, 500.0])
    return world[:, :2] / world[:, 2:3] * K[0, 0] + K[:2, 2]


def big(result: FrameResult) -> FrameResult:
    """The same faces in a 640x480 picture (head pose needs the real frame size)."""
    return FrameResult(0, np.zeros((480, 640, 3), np.uint8), result.faces, {}, result.all_detections)


def live_machine(kind, clock, mode=DoorMode.RECOGNIZE, **kw) -> DoorMachine:
    config = LivenessConfig(time_limit_s=6.0)

    def make():
        return LivenessSession(None, kind=kind, config=config, clock=clock)

    kw.setdefault("timeout_s", 8.0)
    return machine(mode, clock=clock, liveness=make, **kw)


def step(m, clock, result, points, dt=0.1):
    clock.t += dt
    return m.feed(big(result), None if points is None else [points] * len(result.faces))


def test_with_liveness_a_confirmed_match_waits_for_the_challenge_then_is_granted():
    clock = Clock()
    m = live_machine(ChallengeKind.TURN_LEFT, clock)
    assert m.needs_landmarks
    states = [step(m, clock, ALICE, head()) for _ in range(4)]
    s = states[-1]
    assert (s.phase, s.confirmed, s.hint) == (DoorPhase.WATCHING, True, DoorHint.LIVENESS)
    assert s.liveness is not None and not s.liveness.finished
    for yaw in (10, 20, 30, 33, 35):
        s = step(m, clock, ALICE, head(yaw))
        if s.decided_now:
            break
    assert s.phase is DoorPhase.GRANTED and s.decided_now
    assert (s.outcome.decision, s.outcome.name, s.outcome.frames) == (Decision.MATCH, "alice", 3)
    assert "liveness (turn_left)" in s.outcome.detail


def test_with_liveness_a_tilted_photo_of_an_enrolled_person_is_denied_as_spoof():
    clock = Clock()
    m = live_machine(ChallengeKind.TURN_RIGHT, clock)  # tilting the card this way looks like a right turn
    s = None
    for tilt in (0, 0, 0, 0, 10, 20, 30, 40, 45, 50, 55, 60, 65, 65):
        s = step(m, clock, ALICE, tilted_photo(head(), tilt))
        if s.decided_now:
            break
    assert s.phase is DoorPhase.DENIED and s.decided_now
    assert (s.outcome.decision, s.outcome.name) == (Decision.SPOOF, None)
    assert s.outcome.detail.startswith("liveness (turn_right)") and "flat picture" in s.outcome.detail


def test_with_liveness_a_still_face_is_denied_when_the_challenge_time_runs_out():
    clock = Clock()
    m = live_machine(ChallengeKind.BLINK, clock, timeout_s=10.0)
    s = None
    for _ in range(80):  # 8 s of a face that matches but never blinks
        s = step(m, clock, ALICE, head())
        if s.decided_now:
            break
    assert s.phase is DoorPhase.DENIED
    assert s.outcome.decision is Decision.LIVENESS_TIMEOUT
    assert 6.0 <= clock.t - 100.0 < 6.3  # the challenge's own limit, not the door's 10 s


def test_with_liveness_a_stranger_is_denied_at_once():
    clock = Clock()
    m = live_machine(ChallengeKind.BLINK, clock)
    s = [step(m, clock, STRANGER, head()) for _ in range(3)][-1]
    assert s.phase is DoorPhase.DENIED and s.outcome.decision is Decision.NOT_RECOGNIZED


def test_with_liveness_turned_frames_do_not_count_for_the_identity():
    # verify: the claimed person matches while facing the camera; while turned for the
    # challenge the distance is large (a profile), which must neither deny nor break the grant
    clock = Clock()
    turned = {"on": False}
    m = live_machine(ChallengeKind.TURN_RIGHT, clock, mode=DoorMode.VERIFY,
                     distance_to=lambda name, emb: 0.9 if turned["on"] else 0.2)
    m.claim("alice")
    for _ in range(3):
        s = step(m, clock, ALICE, head())
    assert s.confirmed
    turned["on"] = True
    for yaw in (-15, -25, -30, -32, -35):
        s = step(m, clock, ALICE, head(yaw))
        if s.decided_now:
            break
    assert s.phase is DoorPhase.GRANTED and s.outcome.name == "alice"


def test_with_liveness_the_face_leaving_after_the_challenge_restarts_it():
    # a live accomplice blinks, steps away, and a photo of the enrolled person takes the place:
    # the identity frames after the gap need a new challenge
    clock = Clock()
    m = live_machine(ChallengeKind.TURN_LEFT, clock, mode=DoorMode.VERIFY,
                     distance_to=lambda name, emb: 0.9)  # the accomplice is not alice
    m.claim("alice")
    step(m, clock, ALICE, head())
    for yaw in (10, 20, 30, 35, 35):
        s = step(m, clock, ALICE, head(yaw))
    assert s.liveness.passed and not s.confirmed and s.phase is DoorPhase.WATCHING
    s = step(m, clock, NOBODY, None)
    assert not s.liveness.finished  # a new challenge
    m.distance_to = lambda name, emb: 0.2  # the photo of alice
    for _ in range(4):
        s = step(m, clock, ALICE, head())
    assert s.phase is DoorPhase.WATCHING and s.confirmed and s.hint is DoorHint.LIVENESS


def test_liveness_factory_follows_the_setting():
    from faceapp.config import Settings

    assert liveness_factory(Settings(liveness=False)) is None
    make = liveness_factory(Settings(liveness=True, liveness_time_limit_s=4.0), clock=lambda: 0.0)
    a, b = make(), make()
    assert a is not b and a.challenge.config.time_limit_s == 4.0


def test_with_liveness_the_challenge_may_come_first_and_the_identity_after():
    # the visitor turns at once (before three frontal frames confirm them) and then looks back:
    # the turned frames on the way back (large distances) count neither way, the frontal ones grant
    clock = Clock()
    pose = {"yaw": 0.0}
    m = live_machine(ChallengeKind.TURN_LEFT, clock, mode=DoorMode.VERIFY,
                     distance_to=lambda name, emb: 0.9 if abs(pose["yaw"]) > 12 else 0.2)
    m.claim("alice")
    for yaw in (0, 15, 28, 33, 35, 30, 20, 14, 5, 0, 0, 0):
        pose["yaw"] = yaw
        s = step(m, clock, ALICE, head(yaw))
        if s.decided_now:
            break
    assert s.phase is DoorPhase.GRANTED and (s.outcome.name, s.outcome.frames) == ("alice", 3)
    assert pose["yaw"] == 0  # granted on the third frontal frame after the turn


# -- recognize mode: the 1:K rule (faceapp.match.open_set) ---------------------------------------
from faceapp.match.open_set import FarCurve, OpenSetRule  # noqa: E402


def _curve() -> FarCurve:
    from statistics import NormalDist

    t = np.round(np.arange(0.01, 0.61, 0.01), 2)
    far = np.floor(np.array([NormalDist().cdf((x - 0.45) / 0.1) for x in t]) * 1e6) / 1e6
    return FarCurve.from_points(t, far, 10**6)


def sized(result: FrameResult, people: int) -> FrameResult:
    return FrameResult(0, result.frame, result.faces, {}, result.all_detections, gallery_size=people)


def test_recognize_threshold_follows_the_gallery_size_of_each_frame():
    rule = OpenSetRule(_curve(), attempt_far=1e-2, margin=0.0, cap=TAU)
    close = frame(_face([("alice", 0.12), ("bob", 0.60)]))
    small, large = rule.threshold(10), rule.threshold(1000)
    assert large < 0.12 < small <= TAU
    m = machine(recognize_rule=rule)
    for _ in range(3):
        s = m.feed(sized(close, 10))
    assert s.outcome.decision is Decision.MATCH and s.outcome.name == "alice"
    assert s.outcome.threshold == pytest.approx(small)  # the threshold the frames were judged by
    m = machine(recognize_rule=rule)
    for _ in range(3):
        s = m.feed(sized(close, 1000))
    assert s.outcome.decision is Decision.NOT_RECOGNIZED and s.outcome.name is None
    assert s.outcome.threshold == pytest.approx(large)
    v = read_frame(sized(close, 1000), DoorMode.RECOGNIZE, threshold=TAU, rule=rule)
    assert (v.decision, v.distance, v.threshold) == (Decision.NOT_RECOGNIZED, 0.12, pytest.approx(large))


def test_recognize_needs_a_margin_to_the_second_nearest_person():
    rule = OpenSetRule(None, attempt_far=1e-3, margin=0.05, cap=TAU)
    twins = frame(_face([("ann", 0.10), ("eve", 0.12)]))
    m = machine(recognize_rule=rule)
    states = [m.feed(twins) for _ in range(3)]
    assert all(s.verdict.ambiguous for s in states)
    assert states[-1].outcome.decision is Decision.NOT_RECOGNIZED
    m = machine(recognize_rule=rule)
    for _ in range(3):
        s = m.feed(frame(_face([("ann", 0.10), ("eve", 0.16)])))
    assert s.outcome.name == "ann"
    m = machine()  # no rule: the plain nearest-within-tau reading, twins and all
    for _ in range(3):
        s = m.feed(twins)
    assert s.outcome.name == "ann"


def test_verify_needs_the_same_margin_to_every_other_enrolled_person():
    """A claim is judged like a 1:K search (anyone may claim whoever they resemble most), so the
    claimed person must be the recognize margin closer than anyone else enrolled: a look-alike
    claiming their twin's name is not let in on a hair's difference."""
    rule = OpenSetRule(None, attempt_far=1e-3, margin=0.05, cap=TAU)
    for eve, decision in ((0.12, Decision.NO_MATCH), (0.16, Decision.MATCH)):
        m = machine(DoorMode.VERIFY, distance_to=lambda name, emb: 0.10, recognize_rule=rule)
        m.claim("ann")
        states = [m.feed(frame(_face([("ann", 0.10), ("eve", eve)]))) for _ in range(3)]
        assert states[-1].outcome.decision is decision, eve
        assert all(s.verdict.ambiguous for s in states) is (decision is Decision.NO_MATCH)
    v = read_frame(frame(_face([("ann", 0.10), ("eve", float("nan"))])), DoorMode.VERIFY, threshold=TAU,
                   claimed="ann", distance_to=lambda name, emb: 0.10, rule=rule)
    assert v.decision is Decision.NO_MATCH  # a NaN distance to someone else: no known margin


def test_the_run_is_judged_by_its_worst_frame():
    rule = OpenSetRule(None, attempt_far=1e-3, margin=0.0, cap=0.30)
    m = machine(recognize_rule=rule)
    frames = [frame(_face([("alice", d)])) for d in (0.10, 0.20, 0.31, 0.10, 0.12, 0.29)]
    states = [m.feed(f) for f in frames]
    # 0.31 breaks the first run: no single good frame carries a decision
    assert [s.decided_now for s in states] == [False, False, False, False, False, True]
    out = states[-1].outcome
    assert out.name == "alice" and out.worst_distance == pytest.approx(0.29)
    assert out.distance == pytest.approx(np.mean([0.10, 0.12, 0.29]))


def test_from_settings_builds_the_rule_from_the_settings_and_the_model_curve():
    from faceapp.config import Settings
    from faceapp.embed.weights import load_spec

    s = Settings(recognize_far=1e-3, recognize_margin=0.03)
    m = DoorMachine.from_settings(s, DoorMode.RECOGNIZE, threshold=0.15)
    rule = m.recognize_rule
    assert (rule.attempt_far, rule.margin, rule.cap) == (1e-3, 0.03, 0.15)
    if FarCurve.from_spec(load_spec(s.model)) is not None:
        assert rule.threshold(1000) < rule.threshold(10) <= 0.15
    # a frame that does not say how large its gallery was is judged at the cap, with the margin
    v = read_frame(frame(_face([("ann", 0.10), ("eve", 0.12)])), DoorMode.RECOGNIZE, threshold=0.15, rule=rule)
    assert v.ambiguous and v.threshold == 0.15
