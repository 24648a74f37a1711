"""Where faceapp finds its files: shipped resources, the user's data and config folders.

Works from a source checkout, an installed wheel and a frozen (PyInstaller) bundle.
Overrides: ``FACEAPP_HOME`` puts data, config and cache under one folder (tests use it);
``FACEAPP_RESOURCES`` points at another resources folder.

The data and config folders hold faces, templates and the site key, so faceapp creates them
owner-only (0700) and tightens them at start when another account can read them
(:func:`ensure_data_dir`, :func:`ensure_config_dir`). Modes are given explicitly to
``os.mkdir`` and ``chmod`` right after, so the process umask is never changed.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

import platformdirs

APP_NAME = "faceapp"

# Owner-only modes of the folders and files that hold faces, templates and keys.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Permission bits that let another account (group or other) read, write or enter.
GROUP_OTHER_BITS = 0o077

log = logging.getLogger(__name__)


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


def posix_permissions() -> bool:
    """True where file modes protect files (POSIX). On Windows the user profile's ACLs do."""
    return os.name == "posix"


def make_private_dir(path: Path, *, tighten: bool = False) -> Path:
    """Create ``path`` and any missing parents owner-only (0700); return ``path``.

    Folders that already exist keep their mode, except ``path`` itself when ``tighten`` is
    true (for faceapp's own folders): then group/other bits are removed with a warning.
    Raises :class:`OSError` when a folder cannot be created."""
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by another process meanwhile: not ours to change
        if posix_permissions():
            os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
    if not path.is_dir():
        raise NotADirectoryError(f"{str(path)!r} is not a folder")
    if tighten and path not in missing:
        tighten_permissions(path, what="folder")
    return path


def tighten_permissions(path: Path, *, what: str = "file") -> bool:
    """Remove the group/other permission bits of an existing file or folder, with a warning.

    Returns True when the mode was changed. A file that is not ours to change (another
    owner) is left as it is with a warning; faceapp still runs."""
    if not posix_permissions():
        return False
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
    if not mode & GROUP_OTHER_BITS:
        return False
    new = mode & ~GROUP_OTHER_BITS
    try:
        os.chmod(path, new)
    except OSError as exc:
        log.warning(
            "%s %s is readable by other accounts (mode %04o) and could not be made owner-only: %s",
            what, path, mode, exc.strerror or exc,
        )
        return False
    log.warning(
        "%s %s was readable by other accounts (mode %04o); changed it to %04o (owner only)",
        what, path, mode, new,
    )
    return True


def ensure_data_dir() -> Path:
    """The data folder, created 0700 (or tightened to owner-only) if needed."""
    return make_private_dir(data_dir(), tighten=True)


def ensure_config_dir() -> Path:
    """The config folder, created 0700 (or tightened to owner-only) if needed."""
    return make_private_dir(config_dir(), tighten=True)


def default_key_file() -> Path:
    """Where the site key lives by default: ``faceapp.key`` in the config folder, outside
    the database (see :mod:`faceapp.store.crypto`)."""
    return config_dir() / "faceapp.key"
