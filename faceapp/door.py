"""The door: turns a stream of live frame results into one decision per visitor.

Qt-free, so the GUI's door screen, a CLI and the tests drive the same logic. A
:class:`DoorMachine` is fed :class:`~faceapp.pipeline.FrameResult` values (``feed``) and told
the time by a clock function (``tick`` when no frames come). It is a small state machine::

    WAITING --claim(name) / a face appears--> WATCHING --N agreeing frames--> GRANTED | DENIED
       ^                                          |  time limit: TIMEOUT -> DENIED     |
       |                                          |  (recognize) face gone: abandoned  |
       +------------------------------------------+--------- after reset_s ------------+

*Verify* (1:1): the visitor claims a name first, then looks at the camera; each usable frame
is a MATCH or NO_MATCH against that person. A claim costs nothing (a typed name; with
``door_name_completion`` the screen suggests them), so an impostor can claim the enrolled person they look most like: a frame is a
MATCH only when the face is within the recognize rule's threshold for the gallery's size of the
claimed person (as a 1:K search would need) and no other enrolled person is nearer. *Recognize* (1:K): nobody types; an attempt starts
when a face shows up, and each usable frame is a MATCH (a name) or NOT_RECOGNIZED. With a
``recognize_rule`` (:class:`faceapp.match.open_set.OpenSetRule`; :meth:`DoorMachine.from_settings`
makes one from the settings ``recognize_far`` / ``recognize_margin`` and the model's calibration
curve) a recognize frame names a person only when they are within the threshold for the gallery
size the frame was matched against (``FrameResult.gallery_size``: the larger the gallery, the
stricter) *and* at least the margin closer than the second-nearest person; an ambiguous frame
reads NOT_RECOGNIZED. Since every frame of the agreeing run must pass, the run is judged by its
worst frame (``DoorOutcome.worst_distance``), not by any single frame.

A decision needs ``frames_needed`` consecutive frames that agree (same decision, same
person) within ``timeout_s`` of the attempt's start; frames without a usable face (none,
several, poor quality) break the run and set a :class:`DoorHint` for the visitor. Exactly one
:class:`DoorOutcome` is made per attempt (``DoorState.decided_now`` marks the state that
carries it). :class:`faceapp.door_log.DoorRecorder` commits it to the event log within a
time budget and gives the *final* outcome: a grant whose event could not be committed becomes
a ``LOG_UNAVAILABLE`` denial; :meth:`DoorMachine.settle` puts that final outcome on screen.

*Liveness* (optional, ``liveness=`` a factory of :class:`faceapp.landmarks.liveness.LivenessSession`):
each attempt also runs a random challenge (blink, or turn the head left / right) on the same
frames. A MATCH is granted only when the challenge has passed *and* the identity was confirmed
(``frames_needed`` agreeing frames) in the same attempt; while the head is turned away for the
challenge, frames do not count for the identity. A failed challenge ends the attempt DENIED with
its own decision (``SPOOF``, ``LIVENESS_TIMEOUT``, ``LIVENESS_WRONG_MOVE``,
``LIVENESS_FACE_LOST``), which is logged like any other. A non-match is denied at once, without
waiting for the challenge.

*Anti-spoofing* (optional, ``antispoof=`` a maker of :class:`faceapp.antispoof.AntiSpoofAttempt`):
the frames of the agreeing run are scored, on the one face they read, and the scores start again
whenever the run does (another reading, several faces, a poor face, no face). A grant needs the
verdict LIVE over those frames (``antispoof_min_frames`` of them; the confirmed identity waits for
them), a SPOOF verdict denies at once. A frame that does not count also drops a confirmed identity
(except a frame turned away for the liveness challenge).

*Abandoned attempts*: an attempt that had a reading and ended without its decision (recognize:
the face left, e.g. a photo lowered before the anti-spoofing verdict; ``cancel``; ``set_mode``; a
new ``claim``) is reported in the state returned by the call that ended it
(``DoorState.abandoned``, a :class:`DoorAbandoned`; the callers log it as one ``door_abandoned``
event). A reading is the attempt's longest agreeing run: a confirmed identity, or at least two
agreeing frames (MATCH / NO_MATCH; NOT_RECOGNIZED only on an explicit cancel, where one frame
counts too), so a passer-by dropped when the face leaves stays quiet. A TIMEOUT after such a
reading names it in its detail and carries it in ``abandoned`` too (for the caller to log when the
re-entry cooldown holds that timeout back).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from faceapp.match.open_set import OpenSetRule
from faceapp.types import Decision, QualityIssue


class DoorMode(str, enum.Enum):
    VERIFY = "verify"  # 1:1, the visitor claims who they are
    RECOGNIZE = "recognize"  # 1:K, nobody types


class DoorPhase(str, enum.Enum):
    WAITING = "waiting"  # verify: for a claimed name; recognize: for a face
    WATCHING = "watching"  # an attempt runs
    GRANTED = "granted"  # the outcome is shown until reset_s has passed
    DENIED = "denied"


class DoorHint(str, enum.Enum):
    """What the visitor should be told now (the GUI turns these into words)."""

    ENTER_NAME = "enter_name"  # verify mode, waiting for a claim
    LOOK_AT_CAMERA = "look_at_camera"  # waiting for a face / detector unsure
    NO_FACE = "no_face"  # an attempt runs but nobody is in frame
    TOO_FAR = "too_far"  # the face is too small
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    BLURRY = "blurry"  # hold still
    SEVERAL_PEOPLE = "several_people"
    HOLD_STILL = "hold_still"  # usable frames are coming in, keep looking
    LIVENESS = "liveness"  # do what the liveness challenge asks (DoorState.liveness.hint)


# Which quality issue the visitor hears about first when a face has several.
_ISSUE_HINTS = (
    (QualityIssue.TOO_SMALL, DoorHint.TOO_FAR),
    (QualityIssue.TOO_DARK, DoorHint.TOO_DARK),
    (QualityIssue.TOO_BRIGHT, DoorHint.TOO_BRIGHT),
    (QualityIssue.BLURRY, DoorHint.BLURRY),
    (QualityIssue.LOW_CONFIDENCE, DoorHint.LOOK_AT_CAMERA),
)

_DECISIVE = (Decision.MATCH, Decision.NO_MATCH, Decision.NOT_RECOGNIZED)


class _Face(Protocol):  # faceapp.pipeline.FaceResult, structurally
    observation: Any
    candidates: Sequence[Any]


class _Frame(Protocol):  # faceapp.pipeline.FrameResult, structurally
    faces: Sequence[_Face]
    all_detections: Sequence[Any]


DistanceTo = Callable[[str, np.ndarray], "float | None"]


@dataclass(frozen=True)
class FrameVerdict:
    """What one frame says: a decisive reading (MATCH / NO_MATCH / NOT_RECOGNIZED, with the
    person and distance) or why it cannot count (NO_FACE / MULTIPLE_FACES / LOW_QUALITY)."""

    decision: Decision
    name: str | None = None  # the matched person (recognize) or the claimed one (verify)
    distance: float | None = None
    hint: DoorHint | None = None
    issues: tuple[QualityIssue, ...] = ()
    threshold: float | None = None  # the threshold this frame was judged by (recognize: t_K)
    second: float | None = None  # recognize: distance to the second-nearest person; verify: to the nearest other
    ambiguous: bool = False  # recognize: within t_K but not clear of the second-nearest by the margin

    @property
    def decisive(self) -> bool:
        return self.decision in _DECISIVE


@dataclass(frozen=True)
class DoorOutcome:
    """The one decision of an attempt. ``distance`` is the mean over the agreeing frames,
    ``worst_distance`` the largest of them; ``threshold`` the one the frames were judged by."""

    decision: Decision
    mode: DoorMode
    claimed: str | None  # verify: who the visitor said they are
    name: str | None  # who was let in (None unless granted)
    distance: float | None
    threshold: float
    frames: int  # frames that agreed on it (0 for a timeout)
    detail: str = ""
    event_id: int | None = None  # the committed event (set by faceapp.door_log.DoorRecorder)
    worst_distance: float | None = None

    @property
    def granted(self) -> bool:
        return self.decision.granted


@dataclass(frozen=True)
class DoorAbandoned:
    """An attempt that ended without its decision after a reading (see the module doc): the
    longest agreeing run it had. Nobody was let in; ``name`` is who the frames read (a MATCH)."""

    why: str  # "face gone", "timeout", "Esc", "mode switched to verify", ...
    mode: DoorMode
    claimed: str | None
    reading: Decision  # what the agreeing frames said
    name: str | None  # the person they named (MATCH), else None
    frames: int  # how many agreed
    needed: int
    confirmed: bool  # the identity was confirmed (waited for the liveness / anti-spoofing verdict)
    cancelled: bool = False  # ended by the caller (cancel / set_mode / claim), not by the door

    def reading_text(self) -> str:
        text = f"{self.frames} agreeing frame(s) of {self.needed} ({self.reading.value}"
        if self.name and self.reading.granted:
            text += f" {self.name}"
        return text + (", confirmed)" if self.confirmed else ")")

    @property
    def detail(self) -> str:
        """The ``door_abandoned`` event's text."""
        verb = "cancelled" if self.cancelled else "abandoned"
        claimed = f"; claimed {self.claimed!r}" if self.claimed else ""
        return f"{self.mode.value} attempt {verb} ({self.why}) after {self.reading_text()}{claimed}"


@dataclass(frozen=True)
class DoorState:
    phase: DoorPhase
    mode: DoorMode
    hint: DoorHint | None = None
    claimed: str | None = None
    streak: int = 0  # consecutive agreeing frames so far
    needed: int = 3
    remaining_s: float | None = None  # WATCHING: time left; GRANTED/DENIED: until the reset
    outcome: DoorOutcome | None = None  # set while GRANTED/DENIED
    decided_now: bool = False  # True only in the state returned by the call that decided
    verdict: FrameVerdict | None = None  # the latest frame's reading
    liveness: Any = None  # the attempt's faceapp.landmarks.liveness.LivenessState (liveness on)
    confirmed: bool = False  # the identity is settled and waits for the liveness challenge
    # set only in the state returned by the call that ended an attempt with a reading but without
    # its decision (and on a TIMEOUT after a reading): the caller logs it once as door_abandoned
    abandoned: DoorAbandoned | None = None


def read_frame(
    result: _Frame,
    mode: DoorMode,
    *,
    threshold: float,
    claimed: str | None = None,
    distance_to: DistanceTo | None = None,
    rule: OpenSetRule | None = None,
) -> FrameVerdict:
    """One frame's verdict. ``result.faces`` are the faces that count (the pipeline drops
    tiny background faces and unsure detections); a detection too small to count means the
    visitor is too far. ``rule`` (recognize mode): the 1:K threshold for the frame's
    ``gallery_size`` (``threshold`` when the frame does not say) and the margin."""
    faces = list(result.faces)
    if not faces:
        far = bool(getattr(result, "all_detections", ()))
        return FrameVerdict(Decision.NO_FACE, hint=DoorHint.TOO_FAR if far else DoorHint.NO_FACE)
    if len(faces) > 1:
        return FrameVerdict(Decision.MULTIPLE_FACES, hint=DoorHint.SEVERAL_PEOPLE)
    face = faces[0]
    quality = face.observation.quality
    if not quality.ok:
        hint = next((h for issue, h in _ISSUE_HINTS if issue in quality.issues), DoorHint.LOOK_AT_CAMERA)
        return FrameVerdict(Decision.LOW_QUALITY, hint=hint, issues=tuple(quality.issues))
    if mode is DoorMode.VERIFY:
        if claimed is None or distance_to is None:
            raise ValueError("verify mode needs the claimed name and a distance_to function")
        d = distance_to(claimed, face.observation.embedding)
        if d is None:  # the claimed person has no template: nobody can be them
            return FrameVerdict(Decision.NO_MATCH, claimed, None, DoorHint.HOLD_STILL)
        # Anyone may claim any name they know (with door_name_completion the screen even suggests
        # them), so an impostor claims whoever they resemble most: a claim is judged like a 1:K search. The threshold is the one for
        # the gallery's size (``rule``, capped at tau), and the face must be nearer the claimed
        # person than anyone else enrolled by the rule's margin, as a 1:K reading must (written
        # so that a NaN distance to someone else is no known margin).
        limit = threshold
        people = getattr(result, "gallery_size", None)
        margin = rule.margin if rule is not None else 0.0
        if rule is not None and people:
            limit = min(threshold, rule.threshold(people))
        others = [float(c.distance) for c in face.candidates if c.name != claimed]
        nearer = any(not e - d >= 0.0 for e in others)
        ambiguous = not nearer and any(not e - d >= margin for e in others)
        decision = Decision.MATCH if d <= limit and not nearer and not ambiguous else Decision.NO_MATCH
        return FrameVerdict(decision, claimed, float(d), DoorHint.HOLD_STILL, threshold=limit,
                            second=others[0] if others else None, ambiguous=ambiguous and d <= limit)
    cands = list(face.candidates)
    if rule is not None:
        people = getattr(result, "gallery_size", None)
        if people is None:  # the gallery size is unknown: the cap, and the margin
            rule = OpenSetRule(None, rule.attempt_far, rule.margin, min(rule.cap, threshold))
        r = rule.read(cands, people or 1)
        decision = Decision.MATCH if r.name is not None else Decision.NOT_RECOGNIZED
        return FrameVerdict(decision, r.name, r.distance, DoorHint.HOLD_STILL, threshold=r.threshold,
                            second=r.second, ambiguous=r.ambiguous)
    if cands and cands[0].distance <= threshold:
        return FrameVerdict(Decision.MATCH, cands[0].name, float(cands[0].distance), DoorHint.HOLD_STILL,
                            threshold=threshold)
    nearest = float(cands[0].distance) if cands else None
    return FrameVerdict(Decision.NOT_RECOGNIZED, None, nearest, DoorHint.HOLD_STILL, threshold=threshold)


class DoorMachine:
    """Consecutive-frame agreement, a time limit and an automatic reset (see the module doc).

    ``distance_to(name, embedding)`` gives the squared distance of a face to an enrolled
    person (``FaceService.gallery().distance_to``); verify mode needs it. ``clock`` returns
    seconds (``time.monotonic`` by default; tests pass a fake). ``liveness``: None (off), or a
    function returning a new liveness session for each attempt (an object with ``start()`` and
    ``feed(result, landmarks)`` returning a ``LivenessState``, and ``challenge.config.frontal_deg``;
    :func:`liveness_factory` makes one from the settings). Give such a machine each frame's
    landmarks with ``feed(result, landmarks)`` where they were predicted already."""

    def __init__(
        self,
        mode: DoorMode | str = DoorMode.RECOGNIZE,
        *,
        threshold: float,
        frames_needed: int = 3,
        timeout_s: float = 8.0,
        reset_s: float = 4.0,
        distance_to: DistanceTo | None = None,
        clock: Callable[[], float] = time.monotonic,
        liveness: Callable[[], Any] | None = None,
        recognize_rule: OpenSetRule | None = None,
        antispoof: Callable[[], Any] | None = None,
    ) -> None:
        if frames_needed < 1:
            raise ValueError(f"frames_needed must be at least 1 (got {frames_needed})")
        if timeout_s <= 0 or reset_s < 0:
            raise ValueError(f"timeout_s must be > 0 and reset_s >= 0 (got {timeout_s}, {reset_s})")
        self.threshold = float(threshold)
        self.frames_needed = int(frames_needed)
        self.timeout_s = float(timeout_s)
        self.reset_s = float(reset_s)
        self.distance_to = distance_to
        self.clock = clock
        self.liveness = liveness
        self.recognize_rule = recognize_rule
        # a maker of faceapp.antispoof.AntiSpoofAttempt (None: off): the frames of the agreeing run
        # are scored (one face, the one being decided), and a new one starts whenever the run does;
        # a grant needs its verdict LIVE over those frames, SPOOF denies at once
        self.antispoof = antispoof
        self._mode = DoorMode(mode)
        self._to_waiting()

    @classmethod
    def from_settings(cls, settings, mode: DoorMode | str, *, threshold: float, spec=None, **kw) -> DoorMachine:
        """Frames, time limit and reset from :class:`faceapp.config.Settings`, and the recognize
        rule (``recognize_far``, ``recognize_margin``, capped at ``threshold``) with the
        calibration curve of ``spec`` (default: the spec of the setting ``model``)."""
        if "recognize_rule" not in kw:
            if spec is None:
                from faceapp.embed.weights import load_spec
                from faceapp.errors import WeightsError

                try:
                    spec = load_spec(settings.model)
                except WeightsError:
                    spec = None
            kw["recognize_rule"] = OpenSetRule.from_settings(settings, spec, cap=threshold)
        if "antispoof" not in kw and getattr(settings, "antispoof", False):
            from faceapp.antispoof import antispoof_factory

            kw["antispoof"] = antispoof_factory(settings)
        return cls(
            mode,
            threshold=threshold,
            frames_needed=settings.door_frames,
            timeout_s=settings.door_timeout_s,
            reset_s=settings.door_reset_s,
            **kw,
        )

    # -- state ------------------------------------------------------------------------------
    @property
    def mode(self) -> DoorMode:
        return self._mode

    @property
    def needs_landmarks(self) -> bool:
        """True when the frames' 68 landmarks are used (the liveness challenge is on)."""
        return self.liveness is not None

    @property
    def state(self) -> DoorState:
        return self._state(decided_now=False)

    def set_mode(self, mode: DoorMode | str) -> DoorState:
        """Switch between verify and recognize; a running attempt is dropped (``abandoned`` in
        the returned state when it had a reading)."""
        mode = DoorMode(mode)
        abandoned = self._abandon(f"mode switched to {mode.value}", cancelled=True)
        self._mode = mode
        self._to_waiting()
        return self._state(decided_now=False, abandoned=abandoned)

    def claim(self, name: str) -> DoorState:
        """Verify mode: the visitor says who they are; the attempt (and its clock) starts now."""
        if self._mode is not DoorMode.VERIFY:
            raise ValueError("claim() is for verify mode; recognize mode starts when a face appears")
        name = (name or "").strip()
        if not name:
            raise ValueError("the claimed name is empty")
        abandoned = self._abandon("a new claim", cancelled=True)
        self._to_waiting()
        self._claimed = name
        self._start(self.clock())
        return self._state(decided_now=False, abandoned=abandoned)

    def cancel(self, why: str = "cancelled") -> DoorState:
        """Drop the running attempt or the shown outcome and wait again. A running attempt that
        had a reading is in the returned state's ``abandoned`` (``why``: for its detail)."""
        abandoned = self._abandon(why, cancelled=True)
        self._to_waiting()
        return self._state(decided_now=False, abandoned=abandoned)

    def settle(self, outcome: DoorOutcome) -> DoorState:
        """Show the outcome as it was recorded instead of the one decided (a grant that could
        not be logged comes back as a ``LOG_UNAVAILABLE`` denial); the reset clock starts again
        now, so the visitor sees it for the full ``reset_s``. Without a shown outcome (the
        attempt was dropped meanwhile) nothing changes."""
        if self._phase not in (DoorPhase.GRANTED, DoorPhase.DENIED):
            return self.state
        self._outcome = outcome
        self._phase = DoorPhase.GRANTED if outcome.granted else DoorPhase.DENIED
        self._shown_at = self.clock()
        return self.state

    # -- input ------------------------------------------------------------------------------
    def feed(self, result: _Frame, landmarks: Sequence[Any] | None = None) -> DoorState:
        """Take one frame's result; returns the new state (``decided_now`` on a decision).
        ``landmarks``: the 68 landmarks of ``result.faces`` (one entry per face) when the caller
        predicted them; the liveness session uses them instead of predicting again."""
        now = self.clock()
        if self._expire(now):
            return self._state(decided_now=True, abandoned=self._timed_out)
        if self._phase in (DoorPhase.GRANTED, DoorPhase.DENIED):
            return self.state  # the outcome is on screen; frames do not count
        if self._phase is DoorPhase.WAITING and self._mode is DoorMode.VERIFY:
            return self.state  # nobody has claimed a name yet
        verdict = read_frame(
            result, self._mode, threshold=self.threshold, claimed=self._claimed, distance_to=self.distance_to,
            rule=self.recognize_rule,
        )
        self._verdict = verdict
        if self._phase is DoorPhase.WAITING:  # recognize: an attempt starts with a face
            if verdict.decision is Decision.NO_FACE:
                return self.state
            self._start(now)
        self._hint = verdict.hint
        if not verdict.decisive:
            # several faces, a poor one or none: the frame counts for nobody, so the anti-spoofing
            # scores start again; a live face beside a photo (or a blurry live face before it)
            # must not lend the photo its live scores
            self._new_pad()
        live = None
        if self._live is not None:
            live = self._live_state = self._live.feed(result, landmarks)
            if live.finished and not live.passed:
                self._run = []
                self._decide(now, live.decision, None, detail=f"liveness ({live.kind.value}): {live.detail}")
                return self._state(decided_now=True)
            if verdict.decision in (Decision.NO_FACE, Decision.MULTIPLE_FACES):
                # the face left, or another joined: identity and challenge must be shown again
                # by one face, so a live accomplice cannot do the challenge for a photo
                self._confirmed = None
                if live.passed:
                    self._live = self.liveness()
                    live = self._live_state = self._live.start()
            yaw = getattr(self._live, "yaw", None)  # this frame's head turn, degrees
            turned = yaw is not None and abs(yaw) > self._frontal_deg()
            if self._ready(live) and self._confirmed is not None and turned:
                # the challenge was met on a turned frame, which says nothing against the confirmed identity
                return self._grant_confirmed(now)
            if turned:
                # the head is turned (for the challenge): this frame does not count for the identity
                if verdict.decisive:
                    self._hint = DoorHint.LOOK_AT_CAMERA if live.passed else DoorHint.LIVENESS
                return self.state
        if not verdict.decisive:
            # a frame that does not count (facing the camera) ends the run and the confirmed identity:
            # whoever is seen next must be confirmed again, on frames of their own
            self._run = []
            self._confirmed = None
            if verdict.decision is Decision.NO_FACE and self._mode is DoorMode.RECOGNIZE:
                self._absent += 1
                if self._absent >= max(2, self.frames_needed):
                    # the face left: a passer-by is dropped quietly; an attempt that had a
                    # reading (a photo lowered before the verdict) is reported
                    abandoned = self._abandon("face gone")
                    self._to_waiting()
                    return self._state(decided_now=False, abandoned=abandoned)
            return self.state
        self._absent = 0
        key = (verdict.decision, verdict.name)
        if self._run and (self._run[-1].decision, self._run[-1].name) != key:
            self._run = []
            self._new_pad()  # the scores belong to the run they were taken on
        if self._confirmed is not None and (self._confirmed[-1].decision, self._confirmed[-1].name) != key:
            self._confirmed = None  # a decisive frame against the confirmed identity
        self._run.append(verdict)
        self._note_reading()
        if self._pad is not None:
            # only the frames of the run are scored, on the one face they read: the verdict is
            # about the face that is being granted, not about anyone else seen in the attempt
            self._pad.feed(result.frame, result.faces[0].observation.detection.bbox)
            if self._pad.verdict.value == "spoof":
                self._run = []
                self._decide(now, Decision.SPOOF, None, detail=self._pad.detail())
                return self._state(decided_now=True)
        if self._confirmed is not None and self._ready(live):
            return self._grant_confirmed(now)
        if len(self._run) >= self.frames_needed:
            if verdict.decision.granted and not self._ready(live):
                # waits for the challenge and / or enough frames for the anti-spoofing verdict
                self._confirmed = list(self._run[-self.frames_needed:])
                self._note_reading()
                self._hint = DoorHint.LIVENESS if live is not None and not live.passed else DoorHint.HOLD_STILL
                return self.state
            self._decide(now, verdict.decision, verdict.name, detail=self._detail(live))
            return self._state(decided_now=True)
        if self._confirmed is not None and live is not None and not live.passed:
            self._hint = DoorHint.LIVENESS
        return self.state

    def tick(self) -> DoorState:
        """Let time pass without a frame (the time limit and the reset still apply)."""
        decided = self._expire(self.clock())
        return self._state(decided_now=decided, abandoned=self._timed_out if decided else None)

    # -- internals --------------------------------------------------------------------------
    def _note_reading(self) -> None:
        """Keep the attempt's longest agreeing run (a confirmed one first): what an attempt that
        ends without its decision is reported with."""
        confirmed = self._confirmed is not None
        best = self._best
        if best is None or (confirmed, len(self._run)) > (best[3], best[2]):
            last = self._run[-1]
            self._best = (last.decision, last.name, len(self._run), confirmed)

    def _abandon(self, why: str, *, cancelled: bool = False) -> DoorAbandoned | None:
        """The report of the running attempt ending now without its decision, if it had a
        reading (see the module doc); None otherwise."""
        if self._phase is not DoorPhase.WATCHING or self._best is None:
            return None
        decision, name, frames, confirmed = self._best
        if not confirmed:
            if decision is Decision.NOT_RECOGNIZED and not cancelled:
                return None  # a stranger read a few times: a passer-by
            if frames < (1 if cancelled else 2):
                return None
        return DoorAbandoned(why, self._mode, self._claimed, decision, name if decision.granted else None,
                             frames, self.frames_needed, confirmed, cancelled)

    def _ready(self, live) -> bool:
        """The checks beside the identity are met: the challenge passed (or there is none) and
        the anti-spoofing verdict is LIVE (or it is off)."""
        return (live is None or live.passed) and (self._pad is None or self._pad.verdict.value == "live")

    def _frontal_deg(self) -> float:
        config = getattr(getattr(self._live, "challenge", None), "config", None)
        return float(getattr(config, "frontal_deg", 12.0))

    def _detail(self, live) -> str:
        base = f"{self._mode.value}: {len(self._run)} consecutive frames agreed"
        if live is not None and live.passed:
            base += f"; liveness ({live.kind.value}): {live.detail}"
        if self._pad is not None and self._pad.scores:
            base += f"; {self._pad.detail()}"
        return base

    def _grant_confirmed(self, now: float) -> DoorState:
        self._run = list(self._confirmed or [])
        last = self._run[-1]
        self._decide(now, last.decision, last.name, detail=self._detail(self._live_state))
        return self._state(decided_now=True)

    def _to_waiting(self) -> None:
        self._phase = DoorPhase.WAITING
        self._claimed: str | None = None
        self._started: float | None = None
        self._run: list[FrameVerdict] = []
        self._absent = 0
        self._hint: DoorHint | None = None
        self._verdict: FrameVerdict | None = None
        self._outcome: DoorOutcome | None = None
        self._shown_at: float | None = None
        self._live = None  # the attempt's liveness session
        self._live_state = None
        self._pad = None  # the attempt's anti-spoofing scores
        self._confirmed: list[FrameVerdict] | None = None
        self._best: tuple[Decision, str | None, int, bool] | None = None  # the longest agreeing run
        self._timed_out: DoorAbandoned | None = None  # the reading of the attempt that just timed out

    def _start(self, now: float) -> None:
        self._phase = DoorPhase.WATCHING
        self._started = now
        self._run = []
        self._absent = 0
        self._confirmed = None
        self._best = None
        self._timed_out = None
        self._live = self.liveness() if self.liveness is not None else None
        self._live_state = self._live.start() if self._live is not None else None
        self._new_pad()

    def _new_pad(self) -> None:
        """Start the anti-spoofing scores again (a new ``AntiSpoofAttempt``): they cover only the
        current run, i.e. the agreeing frames of the one face whose identity is being decided."""
        self._pad = self.antispoof() if self.antispoof is not None else None

    def _expire(self, now: float) -> bool:
        """Apply the reset and the time limit; True if this made a (TIMEOUT) decision."""
        if self._phase in (DoorPhase.GRANTED, DoorPhase.DENIED):
            if now - (now if self._shown_at is None else self._shown_at) >= self.reset_s:
                self._to_waiting()
            return False
        started = now if self._started is None else self._started  # (video time may start at 0.0)
        if self._phase is DoorPhase.WATCHING and now - started >= self.timeout_s:
            last = self._hint.value.replace("_", " ") if self._hint else "no usable face"
            detail = f"no decision within {self.timeout_s:g} s (last: {last})"
            self._timed_out = self._abandon("timeout")
            if self._timed_out is not None:
                detail += f"; it had {self._timed_out.reading_text()}"
            self._decide(now, Decision.TIMEOUT, None, detail=detail)
            return True
        return False

    def _decide(self, now: float, decision: Decision, name: str | None, *, detail: str = "") -> None:
        run = self._run if decision is not Decision.TIMEOUT else []
        dists = [v.distance for v in run if v.distance is not None]
        used = [v.threshold for v in run if v.threshold is not None]
        granted = decision.granted
        self._outcome = DoorOutcome(
            decision=decision,
            mode=self._mode,
            claimed=self._claimed,
            name=(name if self._mode is DoorMode.RECOGNIZE else self._claimed) if granted else None,
            distance=float(np.mean(dists)) if dists else None,
            threshold=float(min(used)) if used else self.threshold,
            frames=len(run),
            detail=detail or f"{self._mode.value}: {len(run)} consecutive frames agreed",
            worst_distance=float(max(dists)) if dists else None,
        )
        self._phase = DoorPhase.GRANTED if granted else DoorPhase.DENIED
        self._shown_at = now
        self._run = []
        self._confirmed = None

    def _state(self, *, decided_now: bool, abandoned: DoorAbandoned | None = None) -> DoorState:
        now = self.clock()
        if self._phase is DoorPhase.WATCHING:
            remaining = max(0.0, self.timeout_s - (now - (now if self._started is None else self._started)))
        elif self._phase in (DoorPhase.GRANTED, DoorPhase.DENIED):
            remaining = max(0.0, self.reset_s - (now - (now if self._shown_at is None else self._shown_at)))
        else:
            remaining = None
        hint = self._hint
        if self._phase is DoorPhase.WAITING:
            hint = DoorHint.ENTER_NAME if self._mode is DoorMode.VERIFY else DoorHint.LOOK_AT_CAMERA
        return DoorState(
            phase=self._phase,
            mode=self._mode,
            hint=hint,
            claimed=self._claimed,
            streak=len(self._run),
            needed=self.frames_needed,
            remaining_s=remaining,
            outcome=self._outcome,
            decided_now=decided_now,
            verdict=self._verdict,
            liveness=self._live_state,
            confirmed=self._confirmed is not None,
            abandoned=abandoned,
        )


def liveness_factory(settings, *, analyzer=None, clock: Callable[[], float] = time.monotonic, rng=None,
                     mirrored: bool = False) -> Callable[[], Any] | None:
    """The ``liveness=`` argument of :class:`DoorMachine` for these settings: None when the
    setting ``liveness`` is off, else a function making a new random challenge per attempt
    (limits from the settings, on ``clock``). ``analyzer`` predicts landmarks for frames fed
    without them (a :class:`faceapp.landmarks.analyze.LandmarkAnalyzer`)."""
    if not settings.liveness:
        return None
    from faceapp.landmarks.liveness import LivenessConfig, LivenessSession

    config = LivenessConfig.from_settings(settings)

    def make():
        return LivenessSession(analyzer, config=config, rng=rng, mirrored=mirrored, clock=clock)

    return make


def log_outcome(store, outcome: DoorOutcome, *, kind: str = "door", time: datetime | None = None):
    """Write one door decision to the event log (``store`` is a :class:`faceapp.store.repository.Store`);
    returns the :class:`~faceapp.types.Event`. ``time``: when it was decided (default: now).
    The door records through :class:`faceapp.door_log.DoorRecorder`, which bounds the wait."""
    return store.log_event(
        kind,
        decision=outcome.decision,
        claimed=outcome.claimed,
        decided=outcome.name,
        distance=outcome.distance,
        threshold=outcome.threshold,
        detail=outcome.detail,
        time=time,
    )
