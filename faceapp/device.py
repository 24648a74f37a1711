"""The one place that decides where torch runs: ``auto`` (CUDA when available), ``cpu`` or ``cuda``."""

from __future__ import annotations

import logging
import os

from faceapp.errors import ConfigError

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def configure_threads() -> None:
    """Keep torch's OpenMP workers from spinning (on a busy 2-core CPU they can slow 30x)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def resolve_device(choice: str = "auto"):
    """Return a ``torch.device`` for ``choice``; ``cuda`` without a GPU is a ConfigError."""
    import torch

    choice = (choice or "auto").strip().lower()
    if choice not in DEVICE_CHOICES and not choice.startswith("cuda:"):
        raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)} (got {choice!r})")
    if choice == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
        dev = torch.device(choice)
    else:
        dev = torch.device("cpu")
    log.debug("torch device: %s", dev)
    return dev
