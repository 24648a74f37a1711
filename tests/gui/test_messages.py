"""The GUI's words: core messages without command-line flags or internal words."""

from __future__ import annotations

from faceapp.errors import DuplicatePerson, StoreError
from faceapp.gui.messages import error_words, outcome_reason, screen_words


def test_core_messages_in_screen_words():
    assert error_words(DuplicatePerson("'Ann' is already enrolled (use re-enroll/--replace to change their photo)")) == (
        "'Ann' is already enrolled: use Re-enroll on the People page to change their photo")
    text = screen_words("this face already matches 'Bo' (distance 0.100 <= 0.120, the recognize threshold for 3 "
                        "people); use force to enroll anyway")
    assert text.endswith("; tick \u201cEnroll anyway\u201d to enroll them all the same") and "force" not in text
    text = error_words(StoreError("2 template(s) of unknown model(s) cannot be re-embedded; templates kept"))
    assert text == "2 photo(s) of unknown model(s) cannot be re-encoded; enrolled photos kept"
    for word in ("--", "template", "embed"):
        assert word not in text


def test_the_verify_denial_names_the_claim_the_same_way_for_anybody():
    from faceapp.door import DoorMode, DoorOutcome
    from faceapp.types import Decision

    def reason(claimed):
        return outcome_reason(DoorOutcome(Decision.NO_MATCH, DoorMode.VERIFY, claimed, None, None, 0.15, 3))

    assert reason("Tony Blair") == "Not recognized as Tony Blair"
    assert reason("Nobody Atall") == "Not recognized as Nobody Atall"
