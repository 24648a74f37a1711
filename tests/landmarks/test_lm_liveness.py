"""The planar-motion test and the challenge state machine on synthetic landmark tracks."""

from __future__ import annotations

import random

import numpy as np
import pytest

from faceapp.landmarks.liveness import (
    ChallengeKind,
    ChallengeStatus,
    LivenessChallenge,
    LivenessConfig,
    LivenessHint,
    planar_error,
)
from faceapp.landmarks.pose import camera_matrix, project_model, rotation_from_angles
from faceapp.types import Decision

SIZE = (640, 480)
K = camera_matrix(SIZE)
FPS = 10.0


def head(yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    """A real (3-D) head's landmarks."""
    return project_model(rotation_from_angles(yaw, pitch, roll), camera=K)


def photo(points: np.ndarray, tilt_deg: float, axis: str = "y", shift=(0.0, 0.0)) -> np.ndarray:
    """``points`` printed on a flat card 500 mm away, the card turned by ``tilt_deg``."""
    xy = (points - K[:2, 2]) / K[0, 0] * 500.0
    plane = np.c_[xy, np.zeros(len(xy))]
    centre = plane.mean(axis=0)
    a = np.radians(tilt_deg)
    c, s = np.cos(a), np.sin(a)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) if axis == "y" else np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    world = (plane - centre) @ r.T + centre + np.array([shift[0], shift[1], 500.0])
    return world[:, :2] / world[:, 2:3] * K[0, 0] + K[:2, 2]


def run(challenge: LivenessChallenge, frames) -> object:
    challenge.start(0.0)
    state = challenge.state
    for i, pts in enumerate(frames):
        state = challenge.update(pts, i / FPS, image_size=SIZE)
        if state.finished:
            break
    return state


def noisy(frames, sigma=0.4, seed=0):
    rng = np.random.default_rng(seed)
    return [None if f is None else f + rng.normal(0, sigma, f.shape) for f in frames]


def test_planar_error_separates_a_moved_photo_from_a_turning_head():
    front = head()
    assert planar_error(front, photo(front, 50)) < 1e-6  # any tilt of a flat card is one homography
    assert planar_error(front, photo(front, -30, axis="x", shift=(40, 10))) < 1e-6
    assert planar_error(front, head(yaw=25)) > 0.06  # the nose moves against the eyes and jaw
    assert planar_error(front, head(pitch=20)) > 0.03
    assert planar_error(front, head(yaw=25)) > LivenessConfig().planar_max_error > 0.03


def test_turn_challenge_accepts_a_real_head_turning():
    frames = [head()] * 5 + [head(yaw=a) for a in np.linspace(0, 35, 15)]
    state = run(LivenessChallenge(ChallengeKind.TURN_LEFT), noisy(frames))
    assert state.status is ChallengeStatus.PASSED and state.decision is None
    assert state.planar_error > 0.03 and state.yaw >= LivenessConfig().turn_deg


def test_turn_challenge_rejects_a_tilted_photo_as_spoof():
    still = head()  # a frontal photo, tilted about its vertical axis like a head turning right
    frames = [photo(still, 0)] * 5 + [photo(still, a) for a in np.linspace(0, 65, 15)]
    state = run(LivenessChallenge(ChallengeKind.TURN_RIGHT), noisy(frames))
    assert state.status is ChallengeStatus.FAILED and state.decision is Decision.SPOOF
    assert state.planar_error is None or state.planar_error < 0.02


def test_turning_the_wrong_way_is_its_own_failure():
    frames = [head()] * 3 + [head(yaw=a) for a in np.linspace(0, -35, 10)]
    state = run(LivenessChallenge(ChallengeKind.TURN_LEFT), noisy(frames))
    assert state.decision is Decision.LIVENESS_WRONG_MOVE


def test_a_mirrored_picture_swaps_left_and_right():
    frames = [head()] * 3 + [head(yaw=a) for a in np.linspace(0, -35, 10)]
    mirrored = [np.c_[SIZE[0] - 1 - f[:, 0], f[:, 1]][_mirror()] for f in frames]
    # the person turns to their own right; a selfie view shows it as a turn to the image's right
    assert run(LivenessChallenge(ChallengeKind.TURN_RIGHT, mirrored=True), noisy(mirrored)).passed
    wrong = run(LivenessChallenge(ChallengeKind.TURN_RIGHT, mirrored=False), noisy(mirrored))
    assert wrong.decision is Decision.LIVENESS_WRONG_MOVE


def _mirror():
    from faceapp.landmarks.points import MIRROR

    return MIRROR


def close_eyes(points: np.ndarray, amount: float) -> np.ndarray:
    """Move the lids towards each other by ``amount`` (1 = shut)."""
    p = points.copy()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        mid = (p[upper] + p[lower]) / 2
        p[upper] += amount * (mid - p[upper])
        p[lower] += amount * (mid - p[lower])
    return p


def test_blink_challenge_accepts_a_blink():
    f = head()
    frames = [f] * 6 + [close_eyes(f, 0.6), close_eyes(f, 0.9), close_eyes(f, 0.5)] + [f] * 3
    state = run(LivenessChallenge(ChallengeKind.BLINK), noisy(frames, 0.2))
    assert state.passed, state


def test_blink_challenge_is_not_fooled_by_a_photo_tipped_forward():
    # tipping a card forward squashes its eyes in the picture (the raw eye ratio drops by half)
    still = head()
    frames = [photo(still, 0, "x")] * 6 + [photo(still, a, "x") for a in (40, 60, 70, 70, 60, 40, 0)]
    frames += [photo(still, 0, "x")] * int(7 * FPS)
    state = run(LivenessChallenge(ChallengeKind.BLINK, config=LivenessConfig(time_limit_s=2.0)), noisy(frames, 0.2))
    assert state.status is ChallengeStatus.FAILED and state.decision is Decision.SPOOF


def test_doing_nothing_times_out_and_a_vanished_face_is_lost():
    f = head()
    cfg = LivenessConfig(time_limit_s=1.5)
    state = run(LivenessChallenge(ChallengeKind.BLINK, config=cfg), noisy([f] * 30))
    assert state.decision is Decision.LIVENESS_TIMEOUT and state.elapsed_s > 1.5
    state = run(LivenessChallenge(ChallengeKind.TURN_LEFT, config=cfg), [f] * 3 + [None] * 15)
    assert state.decision is Decision.LIVENESS_FACE_LOST
    jump = [f] * 3 + [f + np.array([300.0, 0.0])]
    assert run(LivenessChallenge(ChallengeKind.BLINK), jump).decision is Decision.LIVENESS_FACE_LOST


def test_a_turn_waits_for_a_straight_look_first_and_random_kinds_cover_all():
    ch = LivenessChallenge(ChallengeKind.TURN_LEFT)
    ch.start(0.0)
    assert ch.update(head(yaw=30), 0.1, image_size=SIZE).hint is LivenessHint.LOOK_STRAIGHT
    assert ch.update(head(), 0.2, image_size=SIZE).hint is LivenessHint.TURN_LEFT
    rng = random.Random(1)
    kinds = {LivenessChallenge(rng=rng).kind for _ in range(40)}
    assert kinds == set(ChallengeKind)
    finished = run(LivenessChallenge(ChallengeKind.BLINK, config=LivenessConfig(time_limit_s=1.0)), [head()] * 20)
    assert finished.finished and ch.update(None, 99.0) is ch.state  # a running one still answers


@pytest.mark.parametrize("field, value", [("liveness_time_limit_s", 0.1), ("liveness_turn_deg", 80.0)])
def test_liveness_settings_are_checked(field, value):
    from faceapp.config import Settings
    from faceapp.errors import ConfigError

    LivenessConfig.from_settings(Settings())
    with pytest.raises(ConfigError, match=field):
        LivenessConfig.from_settings(Settings(**{field: value}))


def test_a_session_follows_the_largest_face_on_the_frame_clock():
    from types import SimpleNamespace

    from faceapp.landmarks.liveness import LivenessSession
    from faceapp.types import BBox, Detection, Landmarks

    def det(size: float) -> Detection:
        return Detection(BBox(0, 0, size, size), 0.99, Landmarks(np.zeros((5, 2))))

    yaws = iter([0, 0, 10, 20, 30, 35, 35])
    seen = []

    class Predictor:
        def predict(self, image, detection):
            seen.append((image.shape, detection.bbox.width))
            return head(yaw=next(yaws))

    def frame(*sizes):
        faces = [SimpleNamespace(observation=SimpleNamespace(detection=det(s))) for s in sizes]
        return SimpleNamespace(frame=np.zeros((480, 640, 3), np.uint8), faces=faces)

    times = iter(np.arange(0, 10, 0.1))
    session = LivenessSession(SimpleNamespace(predictor=Predictor()), kind=ChallengeKind.TURN_LEFT,
                              clock=lambda: float(next(times)))
    assert session.start().hint is LivenessHint.LOOK_STRAIGHT
    state = session.feed(frame())  # nobody in the picture yet
    assert state.hint is LivenessHint.NO_FACE and session.points is None
    for _ in range(7):
        state = session.feed(frame(80, 200, 120))
        if state.finished:
            break
    assert state.passed and all(width == 200 for _, width in seen) and session.points.shape == (68, 2)


def test_swapping_photos_behind_a_gap_restarts_the_turn():
    # a frontal photo, a short gap, then a photo of the same head turned: the turn must start
    # from "look straight" again, so the swap cannot pass as one head turning
    frames = [head()] * 4 + [None] * 3 + [head(yaw=35)] * 10
    state = run(LivenessChallenge(ChallengeKind.TURN_LEFT, config=LivenessConfig(time_limit_s=1.5)), noisy(frames))
    assert not state.passed and state.decision is Decision.LIVENESS_TIMEOUT


def test_a_session_takes_the_head_pose_that_comes_with_the_landmarks():
    # the GUI's worker has measured the pose already (FaceLandmarks.quality.pose): not measured twice
    from types import SimpleNamespace

    from faceapp.landmarks.liveness import LivenessSession
    from faceapp.types import BBox, Detection, Landmarks

    det = Detection(BBox(0, 0, 100, 100), 0.99, Landmarks(np.zeros((5, 2))))
    result = SimpleNamespace(frame=np.zeros((480, 640, 3), np.uint8),
                             faces=[SimpleNamespace(observation=SimpleNamespace(detection=det))])
    given = SimpleNamespace(points=head(), quality=SimpleNamespace(pose=SimpleNamespace(yaw=33.0)))
    session = LivenessSession(None, kind=ChallengeKind.TURN_LEFT, clock=lambda: 0.0)
    session.start()
    state = session.feed(result, [given])
    assert session.yaw == 33.0 and state.yaw == 33.0  # the frontal points alone would say 0
    session.feed(result, [head()])  # bare points: measured here
    assert abs(session.yaw) < 1.0


# -- issue 16 item 4: a challenge real people can pass ----------------------------------------
def test_a_real_head_turning_to_the_measured_threshold_passes():
    # real people on the videos turn 15-20 degrees, not 25; planar error 0.044 at 15 deg
    frames = [head()] * 5 + [head(yaw=a) for a in np.linspace(0, 18, 10)] + [head(yaw=18)] * 4
    state = run(LivenessChallenge(ChallengeKind.TURN_LEFT), noisy(frames))
    assert state.passed, state.detail
    assert LivenessConfig().turn_deg <= 18


def test_a_plane_rotating_by_35_degrees_is_a_spoof_though_its_yaw_stays_small():
    still = head()
    frames = [photo(still, 0)] * 5 + [photo(still, a) for a in np.linspace(0, 35, 10)] + [photo(still, 35)] * 5
    for kind in ChallengeKind:  # whatever was asked: the geometry of the motion judges it
        state = run(LivenessChallenge(kind), noisy(frames, 0.2))
        assert state.decision is Decision.SPOOF, (kind, state.detail)
        assert state.yaw is None or abs(state.yaw) < LivenessConfig().turn_deg


def test_a_still_head_with_noise_is_never_a_spoof():
    # a still real head: planar error 0.02-0.04 from the landmark noise alone, eyes half shut
    # now and then (the raw eye ratio dips, as on the real videos)
    f = head()
    frames = [f] * 6 + [close_eyes(f, 0.45) if i % 7 == 3 else f for i in range(60)]
    cfg = LivenessConfig(time_limit_s=3.0)
    for seed in range(5):
        for kind in ChallengeKind:
            state = run(LivenessChallenge(kind, config=cfg), noisy(frames, 1.0, seed))
            assert state.decision is not Decision.SPOOF, (kind, seed, state.detail)


def test_a_small_turn_the_wrong_way_is_not_a_failure():
    frames = [head()] * 3 + [head(yaw=a) for a in (-5, -10, -15, -15, -10, -5, 0)]
    frames += [head(yaw=a) for a in np.linspace(0, 20, 6)] + [head(yaw=20)] * 3
    state = run(LivenessChallenge(ChallengeKind.TURN_LEFT), noisy(frames))
    assert state.passed, state.detail


def test_the_challenge_state_carries_the_angle_for_the_screen():
    ch = LivenessChallenge(ChallengeKind.TURN_RIGHT)
    ch.start(0.0)
    ch.update(head(), 0.1, image_size=SIZE)
    state = ch.update(head(yaw=-8), 0.2, image_size=SIZE)
    assert state.yaw == pytest.approx(-8, abs=1.5) and state.goal_deg == ch.config.turn_deg
    assert state.progress == pytest.approx(8 / ch.config.turn_deg, abs=0.15)
