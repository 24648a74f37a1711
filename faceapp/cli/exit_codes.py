"""Exit codes of the ``faceapp`` command. Documented in the README; scripts may rely on them."""

from __future__ import annotations

import enum

from faceapp import errors
from faceapp.types import Decision


class Exit(enum.IntEnum):
    OK = 0  # success; for verify: a match; for identify: someone recognized
    NO_MATCH = 1  # verify: not the claimed person; identify: not recognized
    USAGE = 2  # bad command-line arguments
    NO_FACE = 3  # no face in the image
    MULTIPLE_FACES = 4  # several faces and --largest was not given
    LOW_QUALITY = 5  # face too small, too dark/bright, blurry or low confidence
    UNKNOWN_PERSON = 6  # the name is not enrolled
    BAD_INPUT = 7  # missing, unreadable, truncated, empty or non-image input
    ALREADY_ENROLLED = 8  # the face matches another person (needs --force) or the name exists
    DATABASE = 9  # the database could not be opened, upgraded or written; model mismatch
    MODEL = 10  # model weights missing or corrupt
    CONFIG = 11  # invalid setting
    CAMERA = 12  # camera source unavailable
    SPOOF = 13  # liveness check failed
    TIMEOUT = 14  # no decision within the time limit
    LOG_TAMPERED = 15  # events verify: the access log was edited, cut or added to behind faceapp's back
    SOFTWARE = 70  # internal error (a bug): one line on stderr, the traceback in a log file (sysexits EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C
    EX_SOFTWARE = 70  # alias of SOFTWARE, the sysexits.h name


EX_SOFTWARE = Exit.SOFTWARE


class _DecisionExits(dict):
    """Decision -> exit code; any decision not listed (the liveness failures) is a SPOOF."""

    def __missing__(self, key):
        return Exit.SPOOF


DECISION_EXIT = _DecisionExits({
    Decision.MATCH: Exit.OK,
    Decision.NO_MATCH: Exit.NO_MATCH,
    Decision.NOT_RECOGNIZED: Exit.NO_MATCH,
    Decision.NO_FACE: Exit.NO_FACE,
    Decision.MULTIPLE_FACES: Exit.MULTIPLE_FACES,
    Decision.LOW_QUALITY: Exit.LOW_QUALITY,
    Decision.SPOOF: Exit.SPOOF,
    Decision.TIMEOUT: Exit.TIMEOUT,
    Decision.LIVENESS_TIMEOUT: Exit.TIMEOUT,
    # a grant withheld because its event could not be committed: denied, the database's fault
    Decision.LOG_UNAVAILABLE: Exit.DATABASE,
})


def for_error(exc: BaseException) -> Exit:
    """The exit code of an exception raised by the core (most specific class first)."""
    table = [
        (errors.UnknownPerson, Exit.UNKNOWN_PERSON),
        (errors.DuplicatePerson, Exit.ALREADY_ENROLLED),
        (errors.AlreadyEnrolled, Exit.ALREADY_ENROLLED),
        (errors.ModelMismatch, Exit.DATABASE),
        (errors.StoreError, Exit.DATABASE),
        (errors.ImageError, Exit.BAD_INPUT),
        (errors.WeightsError, Exit.MODEL),
        (errors.ConfigError, Exit.CONFIG),
        (errors.CameraUnavailable, Exit.CAMERA),
    ]
    if isinstance(exc, errors.FaceRejected):
        return DECISION_EXIT.get(exc.decision, Exit.LOW_QUALITY)
    for cls, code in table:
        if isinstance(exc, cls):
            return code
    return Exit.BAD_INPUT if isinstance(exc, errors.FaceAppError) else Exit.SOFTWARE
