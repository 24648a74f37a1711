"""The words the GUI shows for the core's outcomes (the core speaks in enums)."""

from __future__ import annotations

import re

from faceapp.door import DoorHint, DoorOutcome
from faceapp.landmarks.liveness import LivenessHint
from faceapp.types import Decision, QualityIssue, QualityReport

class _Worded(dict):
    """Words for enum members; a member added to the core later still gets readable words
    (from its value) instead of a KeyError in the GUI."""

    def __missing__(self, key):
        value = getattr(key, "value", str(key))
        return str(value).replace("_", " ").capitalize()


DECISION_TEXT = _Worded({
    Decision.MATCH: "Match",
    Decision.NO_MATCH: "No match",
    Decision.NOT_RECOGNIZED: "Not recognized",
    Decision.NO_FACE: "No face",
    Decision.MULTIPLE_FACES: "Several faces",
    Decision.LOW_QUALITY: "Low quality",
    Decision.SPOOF: "Photo or screen detected",
    Decision.TIMEOUT: "Timeout",
    Decision.LIVENESS_TIMEOUT: "Did not blink / turn in time",
    Decision.LIVENESS_WRONG_MOVE: "Turned the other way",
    Decision.LIVENESS_FACE_LOST: "Face lost during the check",
    Decision.LOG_UNAVAILABLE: "Access log unavailable",
})

LOG_UNAVAILABLE_TEXT = "Access log unavailable - access denied"
REPEAT_TITLE = "WELCOME"  # a person let in moments ago (the cooldown): no new unlock, no new event
# the first-use hint on the Live and Door pages (the link opens the Enroll page)
EMPTY_GALLERY_HTML = 'Nobody is enrolled yet: <a href="enroll">Enroll</a> people first.'
NOT_LOGGED_TEXT = "(Access log unavailable: this decision is not recorded yet)"

ISSUE_TEXT = _Worded({
    QualityIssue.TOO_SMALL: "The face is too small: use a closer or larger photo",
    QualityIssue.TOO_DARK: "The face is too dark: use a brighter photo",
    QualityIssue.TOO_BRIGHT: "The face is washed out: use a less bright photo",
    QualityIssue.BLURRY: "The face is blurry: use a sharper photo",
    QualityIssue.LOW_CONFIDENCE: "The face is unclear (turned away or covered)",
    QualityIssue.EYES_CLOSED: "The eyes are closed: use a photo with open eyes",
    QualityIssue.HEAD_TURNED: "The head is turned: use a photo looking straight at the camera",
})

HINT_TEXT = {
    DoorHint.ENTER_NAME: "Type your name and press Enter",
    DoorHint.LOOK_AT_CAMERA: "Please look at the camera",
    DoorHint.NO_FACE: "No face seen: please look at the camera",
    DoorHint.TOO_FAR: "Please come closer",
    DoorHint.TOO_DARK: "Too dark: please face the light",
    DoorHint.TOO_BRIGHT: "Too bright: please step out of the glare",
    DoorHint.BLURRY: "Please hold still",
    DoorHint.SEVERAL_PEOPLE: "One person at a time, please",
    DoorHint.HOLD_STILL: "Hold still...",
    DoorHint.LIVENESS: "Please do as asked",
}

# The door's liveness challenge (frames are unmirrored: "your left" is the person's own left).
LIVENESS_HINT_TEXT = _Worded({
    LivenessHint.LOOK_STRAIGHT: "Look straight at the camera",
    LivenessHint.BLINK: "Please blink",
    LivenessHint.TURN_LEFT: "Turn your head to your left",
    LivenessHint.TURN_RIGHT: "Turn your head to your right",
    LivenessHint.NO_FACE: "No face seen: please look at the camera",
    LivenessHint.DONE: "Thank you: look at the camera",
})


def decision_text(decision: Decision | None) -> str:
    return DECISION_TEXT.get(decision, "") if decision is not None else ""


def quality_verdict(decision: Decision | None, quality: QualityReport | None, faces: int = 0) -> tuple[bool, str]:
    """(ok, one-line verdict) for an enrollment photo."""
    if decision is Decision.NO_FACE:
        return False, "No face found in the photo"
    if decision is Decision.MULTIPLE_FACES:
        return False, f"{faces} faces in the photo: use a photo of one person"
    if quality is None:
        return False, "No face found in the photo"
    if quality.ok:
        return True, "Good photo: ready to enroll"
    return False, "; ".join(ISSUE_TEXT[i] for i in quality.issues)


def outcome_reason(outcome: DoorOutcome) -> str:
    """The second line of the door's result screen."""
    d = outcome.decision
    if d is Decision.MATCH:
        return "Welcome"
    if d is Decision.NO_MATCH:  # the same words whether or not anybody has that name
        return f"Not recognized as {outcome.claimed}"
    if d is Decision.NOT_RECOGNIZED:
        return "Not recognized"
    if d is Decision.TIMEOUT:
        return "No decision in time: please try again"
    if d is Decision.LOG_UNAVAILABLE:
        return LOG_UNAVAILABLE_TEXT
    return decision_text(d)


def repeat_reason(seconds: float | None) -> str:
    """The second line of the WELCOME screen of a person let in moments ago."""
    if seconds is None:
        return "You were let in a moment ago"
    return f"You were let in {seconds:.0f} s ago"


def record_reason(record) -> str:
    """The second line of the door's result screen for a :class:`faceapp.door_log.DoorRecord`:
    the outcome's reason, and a note when a denial could not be logged (never silent)."""
    text = outcome_reason(record.outcome)
    if not record.committed and record.outcome.decision is not Decision.LOG_UNAVAILABLE:
        text += "\n" + NOT_LOGGED_TEXT
    return text


# Core and command-line words that mean nothing on a screen, and what the screen calls them.
_SCREEN_WORDS = (
    (re.compile(r"\s*\(use re-enroll/--replace to change their photo\)"),
     ": use Re-enroll on the People page to change their photo"),
    (re.compile(r";?\s*use force to enroll anyway"), "; tick \u201cEnroll anyway\u201d to enroll them all the same"),
    (re.compile(r"\s*\(imported with --allow-unsigned\)"), " (imported after you confirmed it)"),
    (re.compile(r"\s*\(--[a-z-]+\)"), ""),
    (re.compile(r"\bre-?embedded\b"), "re-encoded"),
    (re.compile(r"\bre-?embed\b"), "re-encode"),
    (re.compile(r"\btemplate\(s\)"), "photo(s)"),
    (re.compile(r"\btemplates\b"), "enrolled photos"),
    (re.compile(r"\btemplate\b"), "enrolled photo"),
    (re.compile(r"\bembeddings?\b"), "face encoding"),
)


def screen_words(text: str) -> str:
    """``text`` (a core message) in the screen's words: no command-line flags, no "templates"."""
    for pattern, words in _SCREEN_WORDS:
        text = pattern.sub(words, text)
    return text


def error_words(exc: BaseException) -> str:
    """One line for the person at the screen: :func:`faceapp.gui.context.error_text`."""
    from faceapp.gui.context import error_text

    return error_text(exc)