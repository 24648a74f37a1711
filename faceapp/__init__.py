"""faceapp: face verification (1:1) and recognition (1:K) from one-photo enrollments.

The public verbs live in :mod:`faceapp.api` and are re-exported here lazily, so that
``import faceapp`` (and ``faceapp --version``) stays fast and does not load torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = ("load_image", "detect_faces", "embed_faces", "enroll", "verify", "identify", "remove", "FaceApp")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from faceapp import api

        return getattr(api, name)
    raise AttributeError(f"module 'faceapp' has no attribute {name!r}")
