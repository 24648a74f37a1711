"""Where faceapp finds its files: shipped resources, the user's data and config folders.

Works from a source checkout, an installed wheel and a frozen (PyInstaller) bundle.
Overrides: ``FACEAPP_HOME`` puts data, config and cache under one folder (tests use it);
``FACEAPP_RESOURCES`` points at another resources folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "faceapp"


def _bundle_root() -> Path | None:
    root = getattr(sys, "_MEIPASS", None)
    return Path(root) if root else None


def resources_dir() -> Path:
    """The folder holding ``models/``, icons and default settings."""
    env = os.environ.get("FACEAPP_RESOURCES")
    if env:
        return Path(env)
    bundle = _bundle_root()
    if bundle is not None:
        return bundle / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def models_dir() -> Path:
    return resources_dir() / "models"


def _home() -> Path | None:
    env = os.environ.get("FACEAPP_HOME")
    return Path(env) if env else None


def data_dir() -> Path:
    """The user's data folder (the database lives here by default)."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Disposable files: detection and aligned-crop caches of evaluations."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def default_db_url() -> str:
    return f"sqlite:///{data_dir() / 'faceapp.db'}"


def settings_file() -> Path:
    return config_dir() / "settings.toml"
