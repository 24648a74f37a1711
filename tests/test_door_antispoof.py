"""The door with presentation-attack detection (issue 16 item 3): every frame of an attempt is
scored; the attempt's verdict (the median live score once enough frames are scored) must be
LIVE for a grant, a SPOOF verdict denies at once, and it works with the liveness challenge
off. Hand-made frames and live scores; the real network is tested in test_antispoof.py."""

from __future__ import annotations

import sys
from pathlib import Path

from faceapp.antispoof import AntiSpoofAttempt
from faceapp.types import Decision

sys.path.insert(0, str(Path(__file__).parent / "gui"))
from test_door_logic import ALICE, STRANGER, machine  # noqa: E402


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
