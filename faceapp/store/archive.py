"""The gallery export file: one .zip holding everyone enrolled and their templates.

Layout (format ``faceapp-gallery``, version 2)::

    manifest.json     {"format", "version", "exported_at", "people": [...], "templates": [...]}
    faces/000001.jpg  the face each template keeps (faceapp.stored_face: the wide crop, or an older
                      template's model chip)
    signature.json    {"alg": "HMAC-SHA256", "key_id", "mac"}: the MAC of manifest.json's bytes

Each template in the manifest names its person, model id, dim, quality, created_at, its
embedding as base64 of float32 little-endian bytes (exact, no rounding), its face file and
that file's SHA-256, so the one MAC over the manifest covers every byte of the archive.
Version 1 archives (no signature, no face hashes) are read as unsigned.

Reading never trusts the file: the manifest and every face are read with a size limit
(checked against the zip's directory first, and again while reading, since the directory can
lie), the total is bounded, and the signature is checked before anything in the manifest is
used. This module only reads and writes the file; :class:`faceapp.store.repository.Store`
decides what goes into and comes out of the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from faceapp.errors import StoreError, UnsignedArchive

FORMAT = "faceapp-gallery"
VERSION = 2
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"

MAX_MANIFEST_BYTES = 256 << 20  # 256 MiB: about 300,000 templates
MAX_FACE_BYTES = 2 << 20  # a kept face is a 224x224 JPEG of about 12 kB (an older template's chip: ~10 kB)
MAX_TOTAL_BYTES = 4 << 30  # everything read from one archive
MAX_MEMBERS = 1_000_003


@dataclass(frozen=True)
class Signer:
    """A gallery-signing key (HMAC-SHA256) and its public id."""

    key: bytes
    key_id: str

    def mac(self, data: bytes) -> str:
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ArchivedPerson:
    name: str
    created_at: datetime


@dataclass(frozen=True, eq=False)
class ArchivedTemplate:
    person: str
    embedding: np.ndarray  # float32, 1-D
    model_id: str
    quality: float
    created_at: datetime
    face_jpeg: bytes


@dataclass(frozen=True)
class Archive:
    people: list[ArchivedPerson]
    templates: list[ArchivedTemplate]
    signed_by: str | None = None  # key id of a verified signature; None for an unsigned archive


def write_archive(path: str | os.PathLike[str], archive: Archive, *, signer: Signer | None = None) -> None:
    """Write ``archive`` to ``path``, signed by ``signer`` when given (replaced atomically: a
    failed export leaves no half file; the file is readable by its owner only, since it
    holds faces)."""
    target = Path(path)
    manifest: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "people": [{"name": p.name, "created_at": p.created_at.isoformat()} for p in archive.people],
        "templates": [],
    }
    faces: list[tuple[str, bytes]] = []
    for i, t in enumerate(archive.templates, start=1):
        emb = np.ascontiguousarray(t.embedding, dtype="<f4").ravel()
        face_name = f"faces/{i:06d}.jpg" if t.face_jpeg else None
        if face_name:
            faces.append((face_name, t.face_jpeg))
        manifest["templates"].append(  # type: ignore[union-attr]
            {
                "person": t.person,
                "model_id": t.model_id,
                "dim": int(emb.size),
                "quality": float(t.quality),
                "created_at": t.created_at.isoformat(),
                "embedding": base64.b64encode(emb.tobytes()).decode("ascii"),
                "face": face_name,
                "face_sha256": hashlib.sha256(t.face_jpeg).hexdigest() if face_name else None,
            }
        )
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)  # mode 0600
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, manifest_bytes)
                if signer is not None:
                    signature = {"alg": "HMAC-SHA256", "key_id": signer.key_id, "mac": signer.mac(manifest_bytes)}
                    zf.writestr(SIGNATURE, json.dumps(signature))
                for name, data in faces:
                    zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)  # JPEG: compressed
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StoreError(f"cannot write the gallery export {str(target)!r}: {exc.strerror or exc}") from exc


def read_archive(path: str | os.PathLike[str], *, signer: Signer | None = None, allow_unsigned: bool = False) -> Archive:
    """Read and check a gallery export; any problem is a one-line :class:`StoreError`.

    A signed archive must verify with ``signer`` (a wrong key or any changed byte is
    refused). An unsigned one (or any archive when there is no ``signer``) is refused
    unless ``allow_unsigned``."""
    source = Path(path)
    shown = repr(str(source))
    try:
        with zipfile.ZipFile(source) as zf:
            budget = _Budget(shown)
            names = zf.namelist()
            if len(names) > MAX_MEMBERS:
                raise StoreError(f"gallery export {shown} has {len(names)} files, more than a gallery holds")
            if MANIFEST not in names:
                raise StoreError(f"{shown} is not a faceapp gallery export (no {MANIFEST})")
            manifest_bytes = budget.read(zf, MANIFEST, MAX_MANIFEST_BYTES)
            signed_by = _check_signature(zf, manifest_bytes, signer, allow_unsigned, budget, shown)
            manifest = json.loads(manifest_bytes.decode("utf-8"))
            return _parse(manifest, zf, shown, budget, signed_by)
    except FileNotFoundError as exc:
        raise StoreError(f"gallery export {shown} does not exist") from exc
    except OSError as exc:
        raise StoreError(f"cannot read the gallery export {shown}: {exc.strerror or exc}") from exc
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError,
            UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{shown} is not a faceapp gallery export ({exc})") from exc


class _Budget:
    """Bounded reads: each member at most its limit, all of them at most MAX_TOTAL_BYTES."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.total = 0

    def read(self, zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise StoreError(f"gallery export {self.shown} is damaged: {name!r} is missing") from None
        if info.file_size > limit or self.total + info.file_size > MAX_TOTAL_BYTES:
            raise StoreError(
                f"gallery export {self.shown}: {name!r} is {info.file_size:,} bytes, more than the {limit:,} allowed"
            )
        with zf.open(info) as fh:
            data = fh.read(limit + 1)  # the directory's size can lie: never read past the limit
        if len(data) > limit:
            raise StoreError(f"gallery export {self.shown}: {name!r} is larger than the {limit:,} bytes allowed")
        self.total += len(data)
        if self.total > MAX_TOTAL_BYTES:
            raise StoreError(f"gallery export {self.shown} holds more than {MAX_TOTAL_BYTES:,} bytes")
        return data


def _check_signature(zf: zipfile.ZipFile, manifest_bytes: bytes, signer: Signer | None, allow_unsigned: bool,
                     budget: _Budget, shown: str) -> str | None:
    if SIGNATURE not in zf.namelist():
        if allow_unsigned:
            return None
        raise UnsignedArchive(
            f"gallery export {shown} is not signed, so it could have been forged; import it only if you "
            "trust where it came from, with --allow-unsigned (GUI: confirm the unsigned import)"
        )
    try:
        sig = json.loads(budget.read(zf, SIGNATURE, 4096).decode("utf-8"))
        alg, key_id, mac = sig["alg"], str(sig["key_id"]), str(sig["mac"])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"gallery export {shown} has a damaged signature ({type(exc).__name__})") from exc
    if alg != "HMAC-SHA256":
        raise StoreError(f"gallery export {shown} is signed with {alg!r}, which faceapp does not know")
    if signer is None:
        if allow_unsigned:
            return None
        raise StoreError(f"gallery export {shown} is signed by key {key_id}, and no signing key was given to check it")
    if key_id != signer.key_id:
        raise StoreError(
            f"gallery export {shown} is signed by key {key_id}, not by this site's key {signer.key_id}; "
            "refused (give that site's key file to check it)"
        )
    if not hmac.compare_digest(signer.mac(manifest_bytes), mac):
        raise StoreError(f"gallery export {shown} does not match its signature: it was changed after export; refused")
    return key_id


def _parse(manifest: object, zf: zipfile.ZipFile, shown: str, budget: _Budget, signed_by: str | None) -> Archive:
    def bad(what: str) -> StoreError:
        return StoreError(f"gallery export {shown} is damaged: {what}")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StoreError(f"{shown} is not a faceapp gallery export")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise StoreError(
            f"gallery export {shown} has format version {version}; this faceapp reads up to "
            f"{VERSION}, so upgrade faceapp to import it"
        )
    try:
        people = [
            ArchivedPerson(name=str(p["name"]), created_at=_time(p["created_at"]))
            for p in manifest["people"]
        ]
        names = {p.name for p in people}
        if len(names) != len(people):
            raise bad("a name appears twice")
        templates = []
        for i, t in enumerate(manifest["templates"]):
            raw = base64.b64decode(t["embedding"], validate=True)
            dim = int(t["dim"])
            if dim <= 0 or len(raw) != 4 * dim:
                raise bad(f"template {i} has {len(raw)} embedding bytes for dim {dim}")
            embedding = np.frombuffer(raw, dtype="<f4").astype(np.float32)
            if not np.all(np.isfinite(embedding)):
                raise bad(f"template {i} has a non-finite embedding")
            if t["person"] not in names:
                raise bad(f"template {i} belongs to {t['person']!r}, who is not in the export")
            quality = float(t["quality"])
            if not math.isfinite(quality):
                raise bad(f"template {i} has quality {quality}")
            model_id = str(t["model_id"])
            if not model_id:
                raise bad(f"template {i} has no model id")
            face = budget.read(zf, str(t["face"]), MAX_FACE_BYTES) if t.get("face") else b""
            digest = t.get("face_sha256")
            if signed_by is not None and t.get("face") and (
                not isinstance(digest, str) or not hmac.compare_digest(hashlib.sha256(face).hexdigest(), digest)
            ):
                raise bad(f"template {i}'s face file does not match the signed manifest")
            templates.append(
                ArchivedTemplate(
                    person=str(t["person"]),
                    embedding=embedding,
                    model_id=model_id,
                    quality=quality,
                    created_at=_time(t["created_at"]),
                    face_jpeg=face,
                )
            )
    except StoreError:
        raise
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from exc
    return Archive(people=people, templates=templates, signed_by=signed_by)


def _time(text: object) -> datetime:
    value = datetime.fromisoformat(str(text))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
