"""The admin PIN: who may leave the door kiosk and open the admin pages.

The PIN is never stored: ``admin_pin.json`` in the config folder (owner-only, 0600, in a 0700
folder) holds a random salt and the scrypt hash of the PIN (:func:`hashlib.scrypt`, with its
cost parameters, so they can be raised later without breaking stored PINs). ``faceapp admin
set-pin`` / ``clear-pin`` write and remove it.

Wrong PINs are rate-limited by :class:`AdminGate`: the first :data:`FREE_TRIES` wrong PINs in
a row cost nothing, then every further wrong PIN locks the gate for a growing time (30 s,
60 s, 120 s, ... at most 15 minutes); while locked, no PIN is even checked. The count and the
lock survive a restart of the app (``admin_pin_attempts.json`` beside the PIN, best effort).
A right PIN resets it. Every check (wrong, right, refused while locked) is reported through
``on_event`` so the caller logs it as an ``admin`` event of the access log.

Qt-free: the GUI's PIN dialog and the CLI use the same gate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faceapp import paths
from faceapp.errors import ConfigError

log = logging.getLogger(__name__)

PIN_FILE_NAME = "admin_pin.json"
ATTEMPTS_FILE_NAME = "admin_pin_attempts.json"
MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 64
# scrypt cost: N = 2**14, r = 8 (16 MiB, about 50 ms here): cheap for one check, dear for a guesser
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
FREE_TRIES = 2  # wrong PINs in a row that cost nothing; the next one locks the gate
FIRST_LOCK_S = 30.0  # the lock after FREE_TRIES + 1 wrong PINs; doubles with each further one
MAX_LOCK_S = 900.0

ADMIN_EVENT_KIND = "admin"


def pin_path() -> Path:
    """Where the PIN's hash lives: ``admin_pin.json`` in the config folder."""
    return paths.config_dir() / PIN_FILE_NAME


def check_new_pin(pin: str) -> str:
    """``pin`` normalised (NFKC, so the same digits typed on another keyboard match), or a
    ConfigError saying what a PIN must be."""
    if not isinstance(pin, str):
        raise ConfigError("the admin PIN must be text")
    pin = unicodedata.normalize("NFKC", pin)
    if any(unicodedata.category(c).startswith("C") for c in pin):
        raise ConfigError("the admin PIN must not contain control characters (a line break, a tab...)")
    if pin.strip() != pin:
        raise ConfigError("the admin PIN must not start or end with a space")
    if not MIN_PIN_LENGTH <= len(pin) <= MAX_PIN_LENGTH:
        raise ConfigError(f"the admin PIN must have {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} characters (got {len(pin)})")
    return pin


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hash(pin: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * 1024 * 1024)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, the file owner-only (0600) from its creation."""
    paths.make_private_dir(path.parent, tighten=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, paths.PRIVATE_FILE_MODE)
    try:
        if paths.posix_permissions():
            os.fchmod(fd, paths.PRIVATE_FILE_MODE)  # the umask cannot widen it, nor an old tmp's mode
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


class AdminPin:
    """The stored PIN hash at ``path`` (default :func:`pin_path`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else pin_path()

    @property
    def is_set(self) -> bool:
        return self.path.is_file()

    def set(self, pin: str) -> None:
        """Store a new PIN (ConfigError when it is not a valid PIN; OSError when the file
        cannot be written)."""
        pin = check_new_pin(pin)
        salt = secrets.token_bytes(SALT_BYTES)
        record = {
            "version": 1,
            "kdf": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": _b64(salt),
            "hash": _b64(_hash(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)),
        }
        _write_private(self.path, json.dumps(record, indent=2) + "\n")
        _attempts_path(self.path).unlink(missing_ok=True)  # a new PIN starts with a clean count

    def clear(self) -> bool:
        """Remove the PIN; True when there was one."""
        existed = self.is_set
        self.path.unlink(missing_ok=True)
        _attempts_path(self.path).unlink(missing_ok=True)
        return existed

    def matches(self, pin: str) -> bool:
        """True iff ``pin`` is the stored PIN (constant-time comparison). No rate limit here:
        use :class:`AdminGate`. ConfigError when the file is unreadable or not a PIN record
        (a damaged file never means "no PIN")."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
            if record.get("kdf") != "scrypt":
                raise ValueError(f"unknown kdf {record.get('kdf')!r}")
            salt = base64.b64decode(record["salt"], validate=True)
            want = base64.b64decode(record["hash"], validate=True)
            n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
        except FileNotFoundError:
            raise ConfigError(f"no admin PIN is set ({self.path} does not exist)") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"admin PIN file {self.path} cannot be read: {exc}") from None
        if not isinstance(pin, str) or not pin:
            return False
        pin = unicodedata.normalize("NFKC", pin)
        try:
            got = _hash(pin, salt, n, r, p, len(want))
        except ValueError as exc:  # impossible cost parameters in the file
            raise ConfigError(f"admin PIN file {self.path} has invalid scrypt parameters: {exc}") from None
        return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class PinCheck:
    """The answer of :meth:`AdminGate.check`. ``ok``: the PIN was right (or none is set).
    ``locked_s``: when refused because of too many wrong PINs, the seconds left to wait (the
    PIN was not checked); after a wrong PIN that started a lock, that lock's length.
    ``failures``: wrong PINs in a row so far. ``tries_left``: wrong PINs still free before
    the next lock."""

    ok: bool
    locked_s: float = 0.0
    failures: int = 0
    tries_left: int = 0
    checked: bool = True  # False when refused while locked, without looking at the PIN

    @property
    def locked(self) -> bool:
        return self.locked_s > 0


def lock_after(failures: int) -> float:
    """Seconds the gate stays locked after ``failures`` wrong PINs in a row (0 while free)."""
    extra = failures - FREE_TRIES - 1
    if extra < 0:
        return 0.0
    return min(MAX_LOCK_S, FIRST_LOCK_S * 2.0 ** min(extra, 30))


def _attempts_path(pin_file: Path) -> Path:
    return pin_file.with_name(ATTEMPTS_FILE_NAME)


class AdminGate:
    """Checks admin PINs with a growing lock after wrong ones (see the module doc).

    ``clock``: wall-clock seconds (``time.time``; tests pass a fake), since the lock is kept
    across restarts. ``on_event(text)`` is called with one line for every check (the GUI
    logs it as an ``admin`` event, off its UI thread). ``where`` says which screen asked
    (``kiosk``, ``gui``), for those lines."""

    def __init__(
        self,
        pin: AdminPin | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str], None] | None = None,
        persist: bool = True,
    ) -> None:
        self.pin = pin or AdminPin()
        self.clock = clock
        self.on_event = on_event
        self.persist = persist
        self.failures = 0
        self.locked_until = 0.0
        self._load()

    @property
    def is_set(self) -> bool:
        return self.pin.is_set

    def locked_s(self) -> float:
        """Seconds until a PIN is checked again (0 when not locked)."""
        return max(0.0, self.locked_until - self.clock())

    def check(self, pin: str, *, purpose: str = "") -> PinCheck:
        """Check ``pin``; a wrong one counts towards the lock. With no PIN set, anything passes
        (the kiosk says so on screen). ``purpose``: what the PIN was asked for (in the event)."""
        why = f" ({purpose})" if purpose else ""
        if not self.pin.is_set:
            return PinCheck(True)
        wait = self.locked_s()
        if wait > 0:
            self._event(f"admin PIN refused without checking{why}: locked for {wait:.0f} s more after "
                        f"{self.failures} wrong PIN(s) in a row")
            return PinCheck(False, locked_s=wait, failures=self.failures, checked=False)
        if self.pin.matches(pin):
            had = self.failures
            self.failures, self.locked_until = 0, 0.0
            self._save()
            self._event(f"admin PIN accepted{why}" + (f" after {had} wrong PIN(s)" if had else ""))
            return PinCheck(True, failures=0, tries_left=FREE_TRIES + 1)
        self.failures += 1
        lock = lock_after(self.failures)
        if lock > 0:
            self.locked_until = self.clock() + lock
        self._save()
        self._event(f"wrong admin PIN{why}: {self.failures} in a row"
                    + (f"; locked for {lock:.0f} s" if lock else ""))
        return PinCheck(False, locked_s=lock, failures=self.failures,
                        tries_left=max(0, FREE_TRIES + 1 - self.failures))

    # -- internals --------------------------------------------------------------------------
    def _event(self, text: str) -> None:
        log.info("%s", text)
        if self.on_event is not None:
            try:
                self.on_event(text)
            except Exception as exc:  # the caller's logging must not decide the check
                log.warning("admin event not logged: %s", exc)

    def _load(self) -> None:
        if not self.persist:
            return
        try:
            data = json.loads(_attempts_path(self.pin.path).read_text(encoding="utf-8"))
            self.failures = max(0, int(data.get("failures", 0)))
            self.locked_until = float(data.get("locked_until", 0.0))
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("admin PIN attempts file unreadable (%s); counting from its last lock", exc)
            self.failures, self.locked_until = FREE_TRIES + 1, self.clock() + FIRST_LOCK_S  # fail closed

    def _save(self) -> None:
        if not self.persist or not self.pin.is_set:
            return
        path = _attempts_path(self.pin.path)
        try:
            if self.failures == 0:
                path.unlink(missing_ok=True)
            else:
                _write_private(path, json.dumps({"failures": self.failures, "locked_until": self.locked_until}))
        except OSError as exc:
            log.warning("admin PIN attempts not saved (%s): the count holds until the app ends", exc)
