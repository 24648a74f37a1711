"""Faces at rest: envelope encryption of face crops and templates (AES-256-GCM).

Two levels of keys:

* the **site key** (:class:`SiteKey`, the key-encryption key) is 32 random bytes kept in a
  key file *outside* the database (default ``faceapp.key`` in the config folder, mode 0600).
  A copied database alone reveals no face.
* a **data key** per person (:func:`new_data_key`, 32 bytes) seals that person's face crops
  and templates (:func:`seal` / :func:`unseal`); the database keeps it only wrapped by the
  site key (:meth:`SiteKey.wrap` / :meth:`SiteKey.unwrap`). Deleting the wrapped data key
  crypto-shreds the person's data, even where the database keeps old pages (PostgreSQL,
  backups).

Every blob is ``version byte || 96-bit random nonce || ciphertext || 128-bit tag``. The
``aad`` (associated data) names the blob's place, e.g. ``b"faceapp/template/42/face"``: it
is authenticated, not stored, so a blob moved to another row, or a wrapped key used as data,
fails to open. Any failure to open (wrong key, tampered or truncated blob, other place)
raises :class:`DecryptionError`; no message carries key material.

Key rotation: :meth:`SiteKey.generate`, :func:`rewrap` for each wrapped data key, and
:func:`install_key` / :func:`commit_rotation` / :func:`abort_rotation` for the key file
(the old key is kept as ``faceapp.key.old-<timestamp>`` until the database has committed).

Qt-free and torch-free: only ``cryptography`` and the standard library.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceapp import paths
from faceapp.errors import StoreError

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit nonces: random, so at most ~2**32 blobs per key (NIST SP 800-38D)
TAG_BYTES = 16
BLOB_VERSION = 1
# Bytes a sealed or wrapped blob adds to its plaintext: version, nonce, tag.
OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES
WRAPPED_KEY_BYTES = KEY_BYTES + OVERHEAD

KEY_FILE_MAGIC = "faceapp-key"
KEY_FILE_VERSION = "v1"
KEY_FILE_NAME = "faceapp.key"

# Domain separation: what a blob is goes into its authenticated data, so a wrapped data key
# never opens as sealed data and the other way round, even under the same key bytes.
_WRAP_DOMAIN = b"faceapp/wrap-key/v1\x00"
_SEAL_DOMAIN = b"faceapp/seal/v1\x00"
_KEY_ID_DOMAIN = b"faceapp/key-id/v1\x00"

_KEY_LINE = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)$")


class DecryptionError(StoreError):
    """A blob could not be opened: wrong key, tampered or truncated data, or another place's blob."""


# -- data keys and sealed data --------------------------------------------------------------


def new_data_key() -> bytes:
    """A fresh random 32-byte data key (one per person)."""
    return secrets.token_bytes(KEY_BYTES)


def seal(dek: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` (a template's float32 bytes, a face JPEG) with
    the data key ``dek``, bound to ``aad``. Returns ``len(plaintext) + OVERHEAD`` bytes."""
    return _encrypt(_check_key(dek, "data key"), plaintext, _SEAL_DOMAIN + bytes(aad))


def unseal(dek: bytes, blob: bytes, *, aad: bytes) -> bytes:
    """The plaintext of a :func:`seal` blob; :class:`DecryptionError` when ``dek`` or ``aad``
    is not the one it was sealed with or the blob was changed."""
    return _decrypt(_check_key(dek, "data key"), blob, _SEAL_DOMAIN + bytes(aad), "sealed data")


def rewrap(blob: bytes, old: SiteKey, new: SiteKey, *, aad: bytes) -> bytes:
    """A wrapped data key, unwrapped with ``old`` and wrapped again with ``new`` (rotation).

    The data it protects is not touched: rotation re-encrypts 61 bytes per person."""
    return new.wrap(old.unwrap(blob, aad=aad), aad=aad)


def _check_key(key: bytes, what: str) -> bytes:
    if not isinstance(key, (bytes, bytearray, memoryview)) or len(key) != KEY_BYTES:
        raise ValueError(f"a {what} is {KEY_BYTES} bytes")
    return bytes(key)


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    header = bytes((BLOB_VERSION,))
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, bytes(plaintext), header + aad)


def _decrypt(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    blob = bytes(blob)
    if len(blob) < OVERHEAD:
        raise DecryptionError(f"cannot decrypt {what}: the blob is truncated ({len(blob)} bytes)")
    if blob[0] != BLOB_VERSION:
        raise DecryptionError(f"cannot decrypt {what}: unknown format version {blob[0]}")
    nonce = blob[1 : 1 + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[1 + NONCE_BYTES :], blob[:1] + aad)
    except InvalidTag:
        raise DecryptionError(
            f"cannot decrypt {what}: wrong key, or the data was changed or belongs elsewhere"
        ) from None


# -- the site key ---------------------------------------------------------------------------


class SiteKey:
    """The site's key-encryption key. Wraps per-person data keys; never stored in the database.

    ``key_id`` is a short public fingerprint (16 hex digits of SHA-256 over a domain tag and
    the key) that the database records to tell a wrong or missing key file at start."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        self._key = _check_key(key, "site key")
        self.key_id = key_id_of(self._key)

    def __repr__(self) -> str:  # never the key itself
        return f"SiteKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SiteKey) and secrets.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    @classmethod
    def generate(cls) -> SiteKey:
        """A new random site key (not saved: see :meth:`save`)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def wrap(self, dek: bytes, *, aad: bytes) -> bytes:
        """The data key ``dek`` encrypted with the site key, bound to ``aad`` (61 bytes)."""
        return _encrypt(self._key, _check_key(dek, "data key"), _WRAP_DOMAIN + bytes(aad))

    def unwrap(self, blob: bytes, *, aad: bytes) -> bytes:
        """The data key inside a :meth:`wrap` blob; :class:`DecryptionError` on a wrong site
        key, another ``aad`` or a changed blob."""
        dek = _decrypt(self._key, blob, _WRAP_DOMAIN + bytes(aad), "a wrapped data key")
        if len(dek) != KEY_BYTES:
            raise DecryptionError("cannot decrypt a wrapped data key: it is not a data key")
        return dek

    def derive(self, label: bytes) -> bytes:
        """A 32-byte key for one purpose (``label``, e.g. b"faceapp/gallery-signing"),
        derived from the site key (HMAC-SHA256); the site key itself never leaves here."""
        return hmac.new(self._key, b"faceapp/derive/" + bytes(label), hashlib.sha256).digest()

    # -- the key file --

    def to_text(self) -> str:
        """The key file's text: a comment line and ``faceapp-key v1 <base64>``."""
        b64 = base64.b64encode(self._key).decode("ascii")
        return (
            f"# faceapp site key (id {self.key_id}). Secret: keep it owner-only and back it up;\n"
            f"# without it no enrolled face or template can be read.\n"
            f"{KEY_FILE_MAGIC} {KEY_FILE_VERSION} {b64}\n"
        )

    @classmethod
    def from_text(cls, text: str, *, source: str = "key file") -> SiteKey:
        """Parse a key file's text; :class:`StoreError` naming ``source`` when malformed."""
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if len(lines) != 1:
            raise StoreError(f"{source} is malformed: expected one '{KEY_FILE_MAGIC} v1 <base64>' line")
        m = _KEY_LINE.match(lines[0])
        if m is None or m.group(1) != KEY_FILE_MAGIC:
            raise StoreError(f"{source} is malformed: expected '{KEY_FILE_MAGIC} v1 <base64>'")
        if m.group(2) != KEY_FILE_VERSION:
            raise StoreError(f"{source} has an unsupported format version (this faceapp reads v1)")
        try:
            key = base64.b64decode(m.group(3), validate=True)
        except (binascii.Error, ValueError):
            raise StoreError(f"{source} is malformed: the key is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise StoreError(f"{source} is malformed: the key is not {KEY_BYTES} bytes")
        return cls(key)

    @classmethod
    def load(cls, path: Path | str | None = None) -> SiteKey:
        """Read the key file at ``path`` (default :func:`default_key_path`).

        Raises :class:`StoreError` when it is missing, not a regular file, malformed, or
        readable/writable by other accounts (it is then left as it is: see docs/security.md)."""
        path = Path(path) if path is not None else default_key_path()
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise StoreError(f"key file {str(path)!r} not found") from None
        except OSError as exc:
            raise StoreError(f"cannot read key file {str(path)!r}: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"key file {str(path)!r} is not a regular file")
            _check_private(path, st.st_mode)
            raw = _read_all(fd, limit=4096, path=path)
        finally:
            os.close(fd)
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise StoreError(f"key file {str(path)!r} is malformed: it is not text") from None
        return cls.from_text(text, source=f"key file {str(path)!r}")

    @classmethod
    def load_or_create(cls, path: Path | str | None = None) -> SiteKey:
        """Load the key file, or create it with a new key when there is none (first start).

        Two processes starting at once end up with the same key: creation is atomic and
        never overwrites."""
        path = Path(path) if path is not None else default_key_path()
        if not path.exists() and not path.is_symlink():
            key = cls.generate()
            try:
                key.save(path)
                log.info("created site key %s in %s", key.key_id, path)
                return key
            except _KeyFileExists:
                pass  # another process made it first: use theirs
        return cls.load(path)

    def save(self, path: Path | str | None = None) -> Path:
        """Write a new key file at ``path``, 0600 (its folder 0700 when created here).

        Atomic and exclusive: the file appears complete or not at all, and an existing key
        file is never replaced (:class:`StoreError`; use :func:`install_key` to rotate)."""
        path = Path(path) if path is not None else default_key_path()
        _make_key_folder(path)
        tmp = _write_private_temp(path, self.to_text())
        try:
            try:
                _link_exclusive(tmp, path)
            except FileExistsError:
                raise _KeyFileExists(f"key file {str(path)!r} already exists; not replaced") from None
            except OSError as exc:
                raise StoreError(f"cannot write key file {str(path)!r}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return path


class _KeyFileExists(StoreError):
    pass


def key_id_of(key: bytes) -> str:
    """The public fingerprint of a site key: 16 hex digits of SHA-256(domain || key)."""
    return hashlib.sha256(_KEY_ID_DOMAIN + bytes(key)).hexdigest()[:16]


def default_key_path() -> Path:
    """``faceapp.key`` in the user's config folder."""
    return paths.config_dir() / KEY_FILE_NAME


# -- rotation of the key file ---------------------------------------------------------------


def install_key(path: Path | str | None, new: SiteKey) -> Path:
    """Make ``new`` the key at ``path``; the key there now is kept as ``<path>.old-<timestamp>``
    (0600) and that backup's path returned.

    At every instant ``path`` holds a complete key (the old one, then the new one), and the
    old one stays on disk. Rotation, for the caller holding the database::

        old = SiteKey.load(path); new = SiteKey.generate()
        backup = install_key(path, new)           # new key on disk before the database uses it
        try:
            <in one transaction: rewrap(blob, old, new, aad=...) for every data key,
             record new.key_id, commit>
        except BaseException:
            abort_rotation(path, backup); raise   # old key back, the new one kept aside
        commit_rotation(backup)                   # remove the old key

    A crash between the two leaves both keys on disk; :func:`find_key` picks the one whose
    id the database records."""
    path = Path(path) if path is not None else default_key_path()
    current = SiteKey.load(path)  # refuse to rotate away from an unreadable or unsafe file
    if current == new:
        raise ValueError("the new site key is the current one")
    backup = _unique_sibling(path, "old")
    tmp = _write_private_temp(path, new.to_text())
    try:
        try:
            _link_exclusive(path, backup)  # a second name for the old key, atomically
        except OSError as exc:
            raise StoreError(f"cannot keep the old key file as {str(backup)!r}: {exc.strerror or exc}") from exc
        try:
            os.replace(tmp, path)
        except OSError as exc:
            backup.unlink(missing_ok=True)
            raise StoreError(f"cannot replace key file {str(path)!r}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    log.warning("site key file %s now holds key %s; the old key %s is kept in %s until the "
                "rotation commits", path, new.key_id, current.key_id, backup)
    return backup


def commit_rotation(backup: Path | str) -> None:
    """The database now uses the new key (the one in the key file): delete the old key's
    backup file, and every other rotation leftover beside the key file whose key is not the
    new one. After an interrupted rotation the key the database really used is such a
    leftover (``backup`` then holds the key that was never used), and it must not outlive
    the rotation that retired it."""
    backup = Path(backup)
    backup.unlink(missing_ok=True)
    match = re.fullmatch(r"(.+)\.(old|new)-\d{8}T\d{6}(-\d+)?", backup.name)
    if match is not None:
        path = backup.with_name(match.group(1))
        try:
            keep = SiteKey.load(path).key_id
        except StoreError as exc:
            log.warning("rotation leftovers beside %s left in place: %s", path, exc)
        else:
            for leftover in key_candidates(path)[1:]:
                try:
                    if SiteKey.load(leftover).key_id == keep:
                        continue
                except StoreError as exc:
                    log.warning("leaving %s in place: %s", leftover, exc)
                    continue
                leftover.unlink(missing_ok=True)
                log.warning("deleted %s, a site key no database of this key file uses any more", leftover)
    _fsync_dir(backup.parent)


def abort_rotation(path: Path | str | None, backup: Path | str) -> Path:
    """The database did not take the new key: put the old key back at ``path``. The new key is
    kept as ``<path>.new-<timestamp>`` (should the commit have happened after all); returns
    that path."""
    path = Path(path) if path is not None else default_key_path()
    backup = Path(backup)
    aside = _unique_sibling(path, "new")
    try:
        _link_exclusive(path, aside)
        os.replace(backup, path)
    except OSError as exc:
        raise StoreError(f"cannot restore the old key file from {str(backup)!r}: {exc.strerror or exc}") from exc
    _fsync_dir(path.parent)
    log.warning("key rotation aborted: %s holds the old key again; the new one is in %s", path, aside)
    return aside


def key_candidates(path: Path | str | None = None) -> list[Path]:
    """The key file and its rotation leftovers (``.old-*``, ``.new-*``), newest first after it."""
    path = Path(path) if path is not None else default_key_path()
    others = [p for p in path.parent.glob(f"{path.name}.*-*")
              if re.fullmatch(rf"{re.escape(path.name)}\.(old|new)-\d{{8}}T\d{{6}}(-\d+)?", p.name)]
    others.sort(key=lambda p: p.name[len(path.name) + len(".old-"):], reverse=True)
    return ([path] if path.exists() else []) + others


def find_key(key_id: str, path: Path | str | None = None) -> SiteKey:
    """The key whose id is ``key_id`` among the key file and its rotation leftovers.

    For start-up when the database's recorded key id differs from the key file's (a wrong
    key file, or a rotation interrupted by a crash). :class:`StoreError` when none matches."""
    path = Path(path) if path is not None else default_key_path()
    for candidate in key_candidates(path):
        try:
            key = SiteKey.load(candidate)
        except StoreError as exc:
            log.warning("skipping %s: %s", candidate, exc)
            continue
        if key.key_id == key_id:
            return key
    raise StoreError(
        f"no key file with id {key_id} at {str(path)!r}: the database was encrypted with another "
        "site key; restore that key file from its backup"
    )


# -- file helpers ---------------------------------------------------------------------------


def _check_private(path: Path, mode: int) -> None:
    """Refuse a key file other accounts can read or write.

    Refused rather than fixed: someone may already have copied it, so the admin has to know
    (and rotate if so), as ssh does with an unprotected private key."""
    if not paths.posix_permissions():
        return
    bits = stat.S_IMODE(mode)
    if bits & paths.GROUP_OTHER_BITS:
        raise StoreError(
            f"key file {str(path)!r} is accessible by other accounts (mode {bits:04o}): run "
            f"'chmod 600 {path}', and 'faceapp db rotate-key' if it may have been copied"
        )


def _read_all(fd: int, *, limit: int, path: Path) -> bytes:
    chunks = []
    total = 0
    while True:
        chunk = os.read(fd, limit + 1 - total)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise StoreError(f"key file {str(path)!r} is malformed: it is too long for a key file")


def _make_key_folder(path: Path) -> None:
    folder = path.parent
    try:
        if folder == paths.config_dir():
            paths.ensure_config_dir()
        else:
            paths.make_private_dir(folder)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {str(folder)!r} for the key file: {exc.strerror or exc}") from exc


def _write_private_temp(path: Path, text: str) -> Path:
    """A complete, fsynced 0600 file beside ``path`` holding ``text``."""
    for attempt in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp, flags, paths.PRIVATE_FILE_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot write key file {str(path)!r}: {exc.strerror or exc}") from exc
        try:
            if paths.posix_permissions():
                os.fchmod(fd, paths.PRIVATE_FILE_MODE)
            data = text.encode("ascii")
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write key file {str(path)!r}: {exc.strerror or exc}") from exc
        os.close(fd)
        return tmp
    raise StoreError(f"cannot write key file {str(path)!r}: no free temporary name")


def _link_exclusive(src: Path, dst: Path) -> None:
    """Give ``src`` the name ``dst`` without ever replacing an existing ``dst``
    (:class:`FileExistsError`). A hard link where the file system has them, else a copy made
    with O_EXCL."""
    try:
        os.link(src, dst)
        return
    except FileExistsError:
        raise
    except OSError as exc:  # no hard links here (FAT, some network shares): copy instead
        if exc.errno not in _NO_LINK_ERRNOS:
            raise
    data = Path(src).read_bytes()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(dst, flags, paths.PRIVATE_FILE_MODE)
    try:
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


# errno values of os.link on a file system without hard links.
_NO_LINK_ERRNOS = frozenset(
    getattr(errno, n) for n in ("EPERM", "EXDEV", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "ENOSYS")
    if hasattr(errno, n)
)


def _unique_sibling(path: Path, kind: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    candidate = path.with_name(f"{path.name}.{kind}-{stamp}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{kind}-{stamp}-{n}")
        n += 1
    return candidate


def _fsync_dir(folder: Path) -> None:
    """Make a rename or new name in ``folder`` durable (POSIX; a no-op elsewhere)."""
    if not paths.posix_permissions():
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
