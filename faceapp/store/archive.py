"""The gallery export file: one .zip holding everyone enrolled and their templates.

Layout (format ``faceapp-gallery``, version 1)::

    manifest.json     {"format", "version", "exported_at", "people": [...], "templates": [...]}
    faces/000001.jpg  the aligned face of each template (absent when none was stored)

Each template in the manifest names its person, model id, dim, quality, created_at, its
embedding as base64 of float32 little-endian bytes (exact, no rounding) and its face file.
This module only reads and writes the file; :class:`faceapp.store.repository.Store` decides
what goes into and comes out of the database.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from faceapp.errors import StoreError

FORMAT = "faceapp-gallery"
VERSION = 1
MANIFEST = "manifest.json"


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


def write_archive(path: str | os.PathLike[str], archive: Archive) -> None:
    """Write ``archive`` to ``path`` (replaced atomically: a failed export leaves no half file)."""
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
            }
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
                for name, data in faces:
                    zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)  # JPEG: compressed
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StoreError(f"cannot write the gallery export {str(target)!r}: {exc.strerror or exc}") from exc


def read_archive(path: str | os.PathLike[str]) -> Archive:
    """Read and check a gallery export; any problem is a one-line :class:`StoreError`."""
    source = Path(path)
    shown = repr(str(source))
    try:
        with zipfile.ZipFile(source) as zf:
            try:
                manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
            except KeyError:
                raise StoreError(f"{shown} is not a faceapp gallery export (no {MANIFEST})") from None
            return _parse(manifest, zf, shown)
    except FileNotFoundError as exc:
        raise StoreError(f"gallery export {shown} does not exist") from exc
    except OSError as exc:
        raise StoreError(f"cannot read the gallery export {shown}: {exc.strerror or exc}") from exc
    except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{shown} is not a faceapp gallery export ({exc})") from exc


def _parse(manifest: object, zf: zipfile.ZipFile, shown: str) -> Archive:
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
            face = zf.read(t["face"]) if t.get("face") else b""
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
    return Archive(people=people, templates=templates)


def _time(text: object) -> datetime:
    value = datetime.fromisoformat(str(text))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
