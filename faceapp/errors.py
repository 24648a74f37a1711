"""Exceptions raised by the faceapp core.

The core raises; only ``faceapp.cli`` turns these into exit codes and ``faceapp.gui`` into
messages. Every message is one line, written for the person at the keyboard.
"""

from __future__ import annotations


class FaceAppError(Exception):
    """Base class of every error faceapp raises on purpose."""


class ImageError(FaceAppError):
    """An input image is missing, unreadable, truncated, empty or not an image."""


class CameraUnavailable(FaceAppError):
    """A camera source could not be opened or stopped delivering frames."""


class WeightsError(FaceAppError):
    """A model weights file is missing, corrupt (checksum mismatch) or does not fit its spec."""


class StoreError(FaceAppError):
    """The enrollment database could not be opened, upgraded or written."""


class UnsignedArchive(StoreError):
    """A gallery archive carries no signature: it may be imported only when the admin says so."""


class UnknownPerson(StoreError):
    """A name was given that is not enrolled."""


class DuplicatePerson(StoreError):
    """A name that is already enrolled was given for a new enrollment."""


class AlreadyEnrolled(FaceAppError):
    """The face to enroll already matches another enrolled person (use force to override)."""

    def __init__(self, message: str, *, name: str, distance: float) -> None:
        super().__init__(message)
        self.name = name
        self.distance = distance


class ModelMismatch(StoreError):
    """Stored templates were made by another embedding model and cannot be compared."""


class ConfigError(FaceAppError):
    """A setting has an invalid value."""


class FaceRejected(FaceAppError):
    """A photo cannot be enrolled: no face, several faces, or a face of too low quality.

    ``decision`` is the matching :class:`faceapp.types.Decision` (NO_FACE, MULTIPLE_FACES or
    LOW_QUALITY); ``quality`` the measured report when a face was found."""

    def __init__(self, message: str, *, decision, quality=None) -> None:
        super().__init__(message)
        self.decision = decision
        self.quality = quality
