"""Liveness from landmarks: a random challenge (blink, or turn the head left/right) met within a
time limit, and the planar-motion test that catches a photo or a screen held up and moved.

**Why a homography.** Every point of a flat photo lies on one plane, so however the photo is slid,
rotated or tilted in front of the camera, its landmarks in one frame map onto its landmarks in any
other frame by a single homography (a 3x3 projective map) up to the detector's noise. A real head
is not flat: as it turns, the nose moves against the eyes and the mouth, and no homography fits
both frames. :func:`planar_error` is the RMS misfit of the best homography between two frames'
rigid landmarks (:data:`RIGID_POINTS`: jaw line, nose, eye and mouth corners, the brows' ends), as
a fraction of the outer-eye distance. On the generic 3-D face (:mod:`faceapp.landmarks.pose`) a
real head turn of 20 / 25 / 30 degrees gives 0.057 / 0.075 / 0.096; the landmark CNN's noise on a
photo moved about gives 0.01-0.03 (development set: 3 LFW people of peopleDevTrain, 7 attack
videos each).

**Measured on real people** (``scripts/liveness_traces.py``, docs/door-benchmark.md): real heads
turn 10-20 degrees, not 25, and a still real head's planar error is 0.02-0.04 from noise alone,
while a photo tilted 35 degrees reads as under 20 degrees of yaw. So the decision is relative:
:func:`shape_change` (the misfit of a similarity: how much the points changed shape) against
:func:`planar_error`. A picture that changes shape does so as a plane (planar error / shape change
0.20-0.32 on the attack tracks), a real head as depth (lowest running median 0.44 on the clips).
Whatever the challenge, frames that changed shape by at least :data:`FLAT_SHAPE_MIN` are judged
over the whole trace (:data:`FLAT_RATIO_MAX`), so a photo is caught without reaching the turn; a
turn passes at :data:`TURN_DEG` from the straight-ahead frame when its ratio is above
:data:`TURN_PASS_RATIO`; a turn the other way fails only beyond :data:`WRONG_WAY_DEG`.

**Blink.** The eye aspect ratio is measured after mapping each frame's eye points back into the
reference frame by the homography of the *rigid* points (jaw, nose, eye corners): a photo tilted
forward squashes its eyes in the picture, but not relative to the face's own plane, so it does not
count as a blink (it counts as spoofing evidence instead).

:class:`LivenessChallenge` is a Qt-free state machine: ``start(now)``, then ``update(points, now)``
for every frame (``points`` = the 68 landmarks of the face being checked, or ``None`` when no face
was found), each returning a :class:`LivenessState`. It ends PASSED, or FAILED with its own
:class:`~faceapp.types.Decision`:

- ``SPOOF``: the face moved, but as a plane (a photo or a screen);
- ``LIVENESS_TIMEOUT``: the challenge was not met in time;
- ``LIVENESS_WRONG_MOVE``: the head turned the other way than asked, by more than ``wrong_way_deg``;
- ``LIVENESS_FACE_LOST``: the face left the picture, or jumped (another face took its place).
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field

import cv2
import numpy as np

from faceapp.landmarks.points import JAW, NOSE_BOTTOM, NOSE_BRIDGE, check_points, outer_eye_distance
from faceapp.landmarks.pose import eye_aspect_ratio, head_pose
from faceapp.types import Decision

#: Points that expressions and blinks barely move: jaw line, the brows' ends, nose, eye corners,
#: mouth corners (not the lids, the lips or the middle of the brows).
RIGID_POINTS: tuple[int, ...] = (*JAW, 17, 21, 22, 26, *NOSE_BRIDGE, *NOSE_BOTTOM, 36, 39, 42, 45, 48, 54)
#: Points of the planar test: the rigid ones, so that a smile is not taken for depth.
PLANAR_POINTS: tuple[int, ...] = RIGID_POINTS


def fit_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares homography mapping ``src`` (K, 2) onto ``dst`` (K, 2), K >= 4."""
    h, _ = cv2.findHomography(np.asarray(src, np.float64), np.asarray(dst, np.float64), 0)
    if h is None:
        raise ValueError("no homography fits these points (degenerate)")
    return h


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64)
    return cv2.perspectiveTransform(p[None], np.asarray(h, np.float64))[0]


def planar_error(reference: np.ndarray, current: np.ndarray, indices=PLANAR_POINTS) -> float:
    """RMS distance between ``current`` landmarks and ``reference`` ones mapped by the best
    homography, over ``indices``, divided by the current outer-eye distance. Near 0 when the two
    frames show one plane (a photo); large when the face moved in depth (a real head turning)."""
    ref = check_points(reference)[list(indices)]
    cur = check_points(current)[list(indices)]
    try:
        h = fit_homography(ref, cur)
    except (ValueError, cv2.error):
        return float("inf")
    err = apply_homography(h, ref) - cur
    return float(np.sqrt(np.mean(np.sum(err**2, axis=1))) / max(float(outer_eye_distance(current)), 1e-6))


def shape_change(reference: np.ndarray, current: np.ndarray, indices=PLANAR_POINTS) -> float:
    """RMS misfit of the best *similarity* (shift, rotation, scale) mapping ``reference`` onto
    ``current`` over ``indices``, as a fraction of the current outer-eye distance: how much the
    points changed shape. A face slid, turned in the picture or brought nearer keeps its shape
    (about 0, plus the detector's noise); a head turning in depth, or a photo tilted away from the
    camera (foreshortened), changes it. :func:`planar_error` then tells the two apart."""
    ref = check_points(reference)[list(indices)].astype(np.float64)
    cur = check_points(current)[list(indices)].astype(np.float64)
    rc, cc = ref - ref.mean(axis=0), cur - cur.mean(axis=0)
    # least squares similarity in complex numbers: cur ~ a * ref, a = <ref, cur> / <ref, ref>
    zr, zc = rc[:, 0] + 1j * rc[:, 1], cc[:, 0] + 1j * cc[:, 1]
    a = np.vdot(zr, zc) / max(float(np.vdot(zr, zr).real), 1e-12)
    err = zc - a * zr
    return float(np.sqrt(np.mean(np.abs(err) ** 2)) / max(float(outer_eye_distance(current)), 1e-6))


def rectified_eye_aspect_ratio(reference: np.ndarray, current: np.ndarray) -> float:
    """Eye aspect ratio of ``current`` after mapping it into ``reference`` by the homography of
    the rigid points: the eyes' opening relative to the face's own plane."""
    cur = check_points(current)
    ref = check_points(reference)
    try:
        h = fit_homography(cur[list(RIGID_POINTS)], ref[list(RIGID_POINTS)])
    except (ValueError, cv2.error):
        return float("nan")
    return eye_aspect_ratio(apply_homography(h, cur))


#: The turn a turn challenge asks for (degrees of yaw). From the real videos
#: (``scripts/liveness_traces.py``; docs/door-benchmark.md): see the module docstring.
TURN_DEG = 10.0
#: A turn the other way fails the challenge only beyond this: a person who starts the wrong way
#: and corrects is not refused.
WRONG_WAY_DEG = 30.0
#: shape_change (fraction of the eye distance) from which a frame counts for the flat-picture test.
FLAT_SHAPE_MIN = 0.06
#: The flat-picture test: median planar error / shape change of those frames at or below this.
#: Measured (docs/door-benchmark.md): real clips' lowest running median 0.44, photo attacks' 0.20-0.32.
FLAT_RATIO_MAX = 0.38
#: A turn passes only above this ratio (real turning heads 0.5-0.6; one photo of 70 tilt attacks
#: reached 0.43): between FLAT_RATIO_MAX and this the challenge waits for more frames.
TURN_PASS_RATIO = 0.48


class ChallengeKind(str, enum.Enum):
    BLINK = "blink"
    TURN_LEFT = "turn_left"  # the person's own left
    TURN_RIGHT = "turn_right"


class ChallengeStatus(str, enum.Enum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class LivenessHint(str, enum.Enum):
    """What the person should be told now (the GUI turns these into words)."""

    LOOK_STRAIGHT = "look_straight"  # turn challenge: face the camera first
    BLINK = "blink"
    TURN_LEFT = "turn_left"  # "turn your head to your left"
    TURN_RIGHT = "turn_right"
    NO_FACE = "no_face"
    DONE = "done"


@dataclass(frozen=True)
class LivenessConfig:
    """Limits (see :class:`faceapp.config.Settings` for the settings they come from)."""

    time_limit_s: float = 6.0  # to meet the challenge, from start()
    turn_deg: float = TURN_DEG  # yaw a turn must reach, from the straight-ahead frame's
    frontal_deg: float = 12.0  # |yaw| of the straight-ahead reference frame of a turn
    wrong_way_deg: float = WRONG_WAY_DEG  # a turn the other way fails only beyond this |yaw|
    planar_max_error: float = 0.05  # planar_error at or below this = a flat object
    flat_shape_min: float = FLAT_SHAPE_MIN  # shape_change of a frame that counts for the flat-picture test
    flat_ratio_max: float = FLAT_RATIO_MAX  # median planar error / shape change at or below this = a picture
    flat_frames: int = 4  # frames that changed shape before the flat-picture test judges
    turn_pass_ratio: float = TURN_PASS_RATIO  # a turn passes when its planar error / shape change is above this
    frames_needed: int = 2  # frames that must show the turn (or the wrong turn, or a flat fake)
    blink_close_ratio: float = 0.6  # eyes count as closed below this x the open eye aspect ratio
    blink_open_ratio: float = 0.85  # and open again above this x
    face_lost_s: float = 1.0  # no face for this long fails the challenge
    gap_reset_s: float = 0.25  # a shorter gap still restarts a turn from "look straight" (photo swaps)
    max_jump: float = 1.0  # face centre moving more than this x outer-eye distance between frames

    @classmethod
    def from_settings(cls, settings) -> LivenessConfig:
        """The configurable part from the settings (whose ranges Settings.validate checks)."""
        settings.validate()
        return cls(
            time_limit_s=float(settings.liveness_time_limit_s),
            turn_deg=float(settings.liveness_turn_deg),
            planar_max_error=float(settings.liveness_planar_max_error),
        )


@dataclass(frozen=True)
class LivenessState:
    """Where a challenge stands after a frame. ``decision`` is set only when it FAILED."""

    kind: ChallengeKind
    status: ChallengeStatus
    hint: LivenessHint
    decision: Decision | None = None
    elapsed_s: float = 0.0
    remaining_s: float = 0.0
    progress: float = 0.0  # 0..1 towards the goal (for a progress bar)
    yaw: float | None = None  # degrees, this frame
    eye_ratio: float | None = None  # rectified eye aspect ratio, this frame
    planar_error: float | None = None  # of the latest frame that reached the turn
    detail: str = ""
    goal_deg: float | None = None  # turn challenges: the |yaw| asked for (the screen shows yaw against it)

    @property
    def passed(self) -> bool:
        return self.status is ChallengeStatus.PASSED

    @property
    def finished(self) -> bool:
        return self.status is not ChallengeStatus.RUNNING


@dataclass
class _Track:
    reference: np.ndarray | None = None
    last_points: np.ndarray | None = None
    last_seen: float | None = None
    ears: list[float] = field(default_factory=list)
    closed_since: float | None = None
    flat_closures: int = 0
    reference_yaw: float = 0.0
    at_turn: list[float] = field(default_factory=list)
    wrong_way: int = 0
    flat_ratios: list[float] = field(default_factory=list)  # planar error / shape change of changed frames


class LivenessChallenge:
    """One liveness challenge (see the module docstring).

    ``kind``: the challenge, or None to draw one at random (``rng``: a ``random.Random``, for
    tests). ``mirrored``: the points come from a mirrored (selfie) picture, so "left" is swapped.
    """

    def __init__(
        self,
        kind: ChallengeKind | str | None = None,
        *,
        config: LivenessConfig | None = None,
        rng: random.Random | None = None,
        mirrored: bool = False,
    ) -> None:
        self.config = config or LivenessConfig()
        if kind is None:
            kind = (rng or random.SystemRandom()).choice(list(ChallengeKind))
        self.kind = ChallengeKind(kind)
        self.mirrored = mirrored
        self._t0: float | None = None
        self._track = _Track()
        self._state = LivenessState(self.kind, ChallengeStatus.RUNNING, self._goal_hint())

    # -- public ---------------------------------------------------------------------------
    @property
    def state(self) -> LivenessState:
        return self._state

    def start(self, now: float) -> LivenessState:
        """Start (or restart) the clock at ``now`` (seconds, e.g. ``time.monotonic()``)."""
        self._t0 = float(now)
        self._track = _Track(last_seen=float(now))
        self._state = LivenessState(self.kind, ChallengeStatus.RUNNING, self._first_hint(),
                                    remaining_s=self.config.time_limit_s, goal_deg=self._goal_deg())
        return self._state

    def update(
        self, points: np.ndarray | None, now: float, *, image_size: tuple[int, int] | None = None,
        yaw: float | None = None,
    ) -> LivenessState:
        """Feed one frame: the face's 68 landmarks (image pixels) or None, at time ``now``.
        ``image_size`` = (width, height) of the frame, for the head-pose camera model; ``yaw``:
        the head turn of these points (degrees, already unmirrored) when the caller has it."""
        if self._state.finished:
            return self._state
        if self._t0 is None:
            self.start(now)
        c, tr = self.config, self._track
        elapsed = float(now) - self._t0
        if elapsed > c.time_limit_s:  # a frame after the limit cannot meet the challenge any more
            return self._timeout_or(elapsed, self._state)
        if points is None:
            if tr.last_seen is not None and now - tr.last_seen > c.face_lost_s:
                return self._fail(Decision.LIVENESS_FACE_LOST, elapsed, "the face left the picture")
            if self.kind is not ChallengeKind.BLINK and tr.last_seen is not None and now - tr.last_seen > c.gap_reset_s:
                # whatever comes back may be another picture: start the turn again from straight ahead
                tr.reference, tr.at_turn, tr.wrong_way, tr.last_points, tr.flat_ratios = None, [], 0, None, []
            return self._timeout_or(elapsed, self._with(hint=LivenessHint.NO_FACE, elapsed=elapsed))
        p = check_points(points)
        if tr.last_points is not None:
            jump = np.linalg.norm(p.mean(axis=0) - tr.last_points.mean(axis=0))
            size = float(outer_eye_distance(tr.last_points))
            ratio = float(outer_eye_distance(p)) / max(size, 1e-6)
            if jump > c.max_jump * size or not 0.6 < ratio < 1.6:
                return self._fail(Decision.LIVENESS_FACE_LOST, elapsed, "another face took the place of the first")
        tr.last_points, tr.last_seen = p, float(now)
        if tr.reference is not None:  # the whole trace first: a picture is judged however it moved
            state = self._flat_move(p, elapsed, self._state)
            if state.finished:
                return state
        if self.kind is ChallengeKind.BLINK:
            state = self._blink(p, float(now), elapsed)
        else:
            state = self._turn(p, elapsed, image_size, yaw)
        return state if state.finished else self._timeout_or(elapsed, state)

    # -- challenges -----------------------------------------------------------------------
    def _blink(self, p: np.ndarray, now: float, elapsed: float) -> LivenessState:
        c, tr = self.config, self._track
        if tr.reference is None:
            tr.reference = p
        ear = rectified_eye_aspect_ratio(tr.reference, p)
        raw = eye_aspect_ratio(p)
        if not math.isfinite(ear):
            return self._with(elapsed=elapsed)
        baseline = float(np.median(tr.ears)) if len(tr.ears) >= 3 else None
        progress = 0.0
        if baseline is not None and baseline > 0:
            closed = ear < c.blink_close_ratio * baseline
            if tr.closed_since is None:
                if closed:
                    tr.closed_since = now
                elif raw < c.blink_close_ratio * baseline and self._flat_frame(p):
                    tr.flat_closures += 1  # the picture's eyes shrank with the whole (flat) face
                else:
                    tr.ears.append(ear)
            elif ear > c.blink_open_ratio * baseline:
                return self._pass(elapsed, f"blink ({now - tr.closed_since:.2f} s)", eye_ratio=ear)
            progress = 0.5 if tr.closed_since is not None else max(0.0, min(0.45, (baseline - ear) / baseline))
        else:
            tr.ears.append(ear)
        return self._with(hint=LivenessHint.BLINK, elapsed=elapsed, eye_ratio=ear, progress=progress)

    def _turn(self, p: np.ndarray, elapsed: float, image_size, yaw: float | None = None) -> LivenessState:
        c, tr = self.config, self._track
        if yaw is None:
            yaw = head_pose(p, image_size, mirrored=self.mirrored).yaw
        if not math.isfinite(yaw):
            return self._with(elapsed=elapsed)
        if tr.reference is None:
            if abs(yaw) <= c.frontal_deg:
                tr.reference, tr.reference_yaw = p, float(yaw)
                return self._with(hint=self._goal_hint(), elapsed=elapsed, yaw=yaw)
            return self._with(hint=LivenessHint.LOOK_STRAIGHT, elapsed=elapsed, yaw=yaw)
        sign = 1.0 if self.kind is ChallengeKind.TURN_LEFT else -1.0
        # the turn from the straight-ahead frame (a camera a little to one side shifts "straight");
        # head_pose has already undone a mirrored picture
        toward = sign * (yaw - tr.reference_yaw)
        planar = None
        if toward >= c.turn_deg:
            planar = planar_error(tr.reference, p)
            shape = shape_change(tr.reference, p)
            # a real head's planar error grows with its turn (0.044 at 15 deg, 0.06 at 20 deg on
            # the generic face): judged against the shape change, not an absolute line, and only
            # once the points changed shape beyond noise (a picture held at an angle from the start)
            if shape >= c.flat_shape_min:
                tr.at_turn.append(planar / shape)
            tr.wrong_way = 0
            # and only once the whole-trace test has seen enough changed frames not to call it flat
            if len(tr.at_turn) >= c.frames_needed and len(tr.flat_ratios) >= c.flat_frames:
                ratio = float(np.median(tr.at_turn[-c.frames_needed:]))
                if ratio > c.turn_pass_ratio:
                    return self._pass(elapsed, f"turn of {yaw:+.0f} deg, planar error {planar:.3f} "
                                      f"({ratio:.2f} x the shape change)", yaw=yaw, planar=planar)
                if ratio <= c.flat_ratio_max:
                    return self._fail(Decision.SPOOF, elapsed, f"the face turned {yaw:+.0f} deg as a flat picture "
                                      f"(planar error {planar:.3f}, {ratio:.2f} x the shape change)", yaw=yaw,
                                      planar=planar)
                # between the two: neither flat nor clearly deep yet; the next frames decide
        elif toward <= -c.wrong_way_deg:
            tr.wrong_way += 1
            if tr.wrong_way >= c.frames_needed:
                return self._fail(Decision.LIVENESS_WRONG_MOVE, elapsed, f"turned the other way ({yaw:+.0f} deg)", yaw=yaw)
        else:
            tr.wrong_way = 0
        progress = max(0.0, min(1.0, toward / c.turn_deg))
        return self._with(hint=self._goal_hint(), elapsed=elapsed, yaw=yaw, progress=progress, planar=planar)

    def _flat_move(self, p: np.ndarray, elapsed: float, state: LivenessState) -> LivenessState:
        """The whole trace's geometry, whatever the challenge and however small the apparent
        yaw: a picture moved about changes the points' shape (``shape_change``) while they still
        fit one plane, so its planar error stays a small part of its shape change; a real head's
        shape changes (turns, a talking jaw) are mostly depth. A photo tilted 35 degrees reads as
        less than 20 degrees of yaw and may never reach the turn, yet it is judged here. The
        median ratio of the frames that changed shape by at least ``flat_shape_min`` decides, once
        there are ``flat_frames`` of them (thresholds: :data:`FLAT_RATIO_MAX`)."""
        c, tr = self.config, self._track
        shape = shape_change(tr.reference, p)
        if shape < c.flat_shape_min:
            return state
        tr.flat_ratios.append(planar_error(tr.reference, p) / shape)
        if len(tr.flat_ratios) < c.flat_frames:
            return state
        ratio = float(np.median(tr.flat_ratios))
        if ratio > c.flat_ratio_max:
            return state
        return self._fail(Decision.SPOOF, elapsed, f"the face changed shape as a flat picture ({len(tr.flat_ratios)} "
                          f"frames, planar error {ratio:.2f} x the shape change)", yaw=state.yaw)

    def _flat_frame(self, p: np.ndarray) -> bool:
        """This frame alone changed shape as a plane would (for the blink's closed-looking eyes:
        a still real head's noise, planar error 0.02-0.04, changes no shape, so it never counts)."""
        c, tr = self.config, self._track
        shape = shape_change(tr.reference, p)
        return shape >= c.flat_shape_min and planar_error(tr.reference, p) <= c.flat_ratio_max * shape

    # -- helpers --------------------------------------------------------------------------
    def _goal_hint(self) -> LivenessHint:
        return {ChallengeKind.BLINK: LivenessHint.BLINK, ChallengeKind.TURN_LEFT: LivenessHint.TURN_LEFT,
                ChallengeKind.TURN_RIGHT: LivenessHint.TURN_RIGHT}[self.kind]

    def _goal_deg(self) -> float | None:
        return None if self.kind is ChallengeKind.BLINK else self.config.turn_deg

    def _first_hint(self) -> LivenessHint:
        return LivenessHint.BLINK if self.kind is ChallengeKind.BLINK else LivenessHint.LOOK_STRAIGHT

    def _with(self, *, hint: LivenessHint | None = None, elapsed: float, yaw=None, eye_ratio=None,
              progress: float | None = None, planar=None) -> LivenessState:
        s = self._state
        self._state = LivenessState(
            self.kind, ChallengeStatus.RUNNING, hint or s.hint, None, elapsed,
            max(0.0, self.config.time_limit_s - elapsed), s.progress if progress is None else progress,
            yaw, eye_ratio, planar if planar is not None else s.planar_error, goal_deg=self._goal_deg(),
        )
        return self._state

    def _timeout_or(self, elapsed: float, state: LivenessState) -> LivenessState:
        if elapsed <= self.config.time_limit_s:
            return state
        tr = self._track
        if self.kind is ChallengeKind.BLINK and tr.flat_closures >= self.config.frames_needed:
            return self._fail(Decision.SPOOF, elapsed, "the eyes closed only as a tilted flat picture")
        return self._fail(Decision.LIVENESS_TIMEOUT, elapsed, f"no {self.kind.value.replace('_', ' ')} within "
                          f"{self.config.time_limit_s:.0f} s", yaw=state.yaw)

    def _pass(self, elapsed: float, detail: str, *, yaw=None, planar=None, eye_ratio=None) -> LivenessState:
        self._state = LivenessState(self.kind, ChallengeStatus.PASSED, LivenessHint.DONE, None, elapsed,
                                    max(0.0, self.config.time_limit_s - elapsed), 1.0, yaw, eye_ratio, planar, detail,
                                    self._goal_deg())
        return self._state

    def _fail(self, decision: Decision, elapsed: float, detail: str, *, yaw=None, planar=None) -> LivenessState:
        self._state = LivenessState(self.kind, ChallengeStatus.FAILED, LivenessHint.DONE, decision, elapsed,
                                    max(0.0, self.config.time_limit_s - elapsed), self._state.progress, yaw, None,
                                    planar, detail, self._goal_deg())
        return self._state


class LivenessSession:
    """A challenge fed with pipeline frames: picks the largest face of each
    :class:`faceapp.pipeline.FrameResult`, predicts its landmarks and updates the challenge.

        session = LivenessSession(analyzer, config=LivenessConfig.from_settings(settings))
        state = session.start()                 # a random challenge; show state.hint
        for result in pipeline.run(frames):     # (the door's worker loop)
            state = session.feed(result)        # PASSED / FAILED(decision) / RUNNING
            if state.finished: break

    ``clock`` (default ``time.monotonic``) gives the time of each frame; tests pass their own.
    ``points`` of the last frame (or None) are kept for drawing, and ``yaw``, its head turn in
    degrees (also after the challenge ended: the door counts only frontal frames for the identity)."""

    def __init__(self, analyzer, *, config: LivenessConfig | None = None, kind=None, rng=None,
                 mirrored: bool = False, clock=None) -> None:
        import time

        self.analyzer = analyzer
        self.clock = clock or time.monotonic
        self.challenge = LivenessChallenge(kind, config=config, rng=rng, mirrored=mirrored)
        self.points: np.ndarray | None = None
        self.yaw: float | None = None  # the latest frame's head turn (degrees; None without a face)

    @property
    def state(self) -> LivenessState:
        return self.challenge.state

    def start(self) -> LivenessState:
        return self.challenge.start(self.clock())

    def feed(self, result, landmarks=None) -> LivenessState:
        """Update the challenge with one frame. ``landmarks``: the frame's landmarks already
        predicted by the caller (a sequence with one entry per face of ``result.faces``, each a
        (68, 2) array or an object with ``.points``, e.g. :class:`FaceLandmarks`), so that a
        worker thread that predicted them for drawing is not run twice; without them the
        session's analyzer predicts the largest face's points."""
        now = self.clock()
        faces = list(result.faces)
        if not faces:
            self.points = self.yaw = None
            return self.challenge.update(None, now)
        i = max(range(len(faces)), key=lambda j: faces[j].observation.detection.bbox.area)
        pose = None
        if landmarks is not None:
            if len(landmarks) != len(faces):
                raise ValueError(f"{len(landmarks)} landmark sets for {len(faces)} faces")
            entry = landmarks[i]
            self.points = np.asarray(getattr(entry, "points", entry), dtype=np.float32)
            # a FaceLandmarks already carries the head pose of this frame (unmirrored)
            pose = getattr(getattr(entry, "quality", None), "pose", None) if not self.challenge.mirrored else None
        elif self.analyzer is None:
            raise ValueError("no landmarks were given for this frame and the session has no analyzer")
        else:
            self.points = self.analyzer.predictor.predict(result.frame, faces[i].observation.detection)
        h, w = result.frame.shape[:2]
        yaw = pose.yaw if pose is not None else head_pose(self.points, (w, h), mirrored=self.challenge.mirrored).yaw
        self.yaw = float(yaw) if math.isfinite(yaw) else None
        return self.challenge.update(self.points, now, image_size=(w, h), yaw=float(yaw))
