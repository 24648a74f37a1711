"""Presentation-attack detection: is the face in front of the camera a live person, or a print, a
screen or a mask? A single-frame network (MiniFASNet, :mod:`faceapp.antispoof.network`) scores each
frame of an attempt (:class:`AntiSpoof`); :class:`AntiSpoofAttempt` turns an attempt's scores into
a verdict. Qt-free; the network runs on torch or, in the installers, on ONNX Runtime
(:func:`faceapp.runtime.backend`; imported when a model is built, not by this package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceapp.antispoof.attempt import AntiSpoofAttempt, PadVerdict, antispoof_factory, attempt_is_live
from faceapp.antispoof.crop import CropBox, crop_box, crop_face

if TYPE_CHECKING:
    from faceapp.antispoof.model import AntiSpoof, AntiSpoofSpec, load_antispoof_spec

__all__ = [
    "AntiSpoof", "AntiSpoofAttempt", "AntiSpoofSpec", "CropBox", "PadVerdict", "antispoof_factory",
    "attempt_is_live", "crop_box", "crop_face", "load_antispoof_spec",
]


def __getattr__(name: str):
    if name in ("AntiSpoof", "AntiSpoofSpec", "load_antispoof_spec"):
        from faceapp.antispoof import model

        return getattr(model, name)
    raise AttributeError(f"module 'faceapp.antispoof' has no attribute {name!r}")
