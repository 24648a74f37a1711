"""The enrollment store: people, their face templates and the event log.

:class:`Store` is the only way the rest of faceapp touches the database. It speaks in the
domain types of :mod:`faceapp.types` (never ORM rows), raises :mod:`faceapp.errors`
exceptions with one-line messages, and makes every write one transaction: when a method
raises, nothing it did is kept.

Each template carries the id of the model that made its embedding; :meth:`Store.gallery`
refuses to mix models. :meth:`Store.generation` changes whenever people or templates
change (also when another process changed them), so an in-memory gallery knows when to
reload.

A Store may be shared between threads when it is backed by a file (each call uses its own
connection from the pool); an in-memory database has a single connection, so use it from
one thread at a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from sqlalchemy import (Integer, Text, bindparam, cast, delete, distinct, func, insert, or_, select, text, type_coerce,
                        update)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from faceapp.errors import DuplicatePerson, ModelMismatch, StoreError, UnknownPerson
from faceapp.store import archive, crypto, eventlog, notify
from faceapp.store.db import describe_error, make_engine, mask_url, writer
from faceapp.store.migrate import current_revision, head_revision, upgrade_to_head
from faceapp.store.models import (
    EVENT_HEAD_KEY,
    GALLERY_HEAD_KEY,
    GENERATION_KEY,
    MODEL_ID_LENGTH,
    NAME_LENGTH,
    SITE_KEY_ID_KEY,
    EventRow,
    MetaRow,
    PersonRow,
    TemplateRow,
    as_utc,
    utcnow,
)
from faceapp.store.names import name_key, normalize_name
from faceapp.types import Decision, Event, Person, Template

log = logging.getLogger(__name__)

OnConflict = Literal["skip", "replace", "error"]
_ON_CONFLICT = ("skip", "replace", "error")

# How far from 1 the length of a stored embedding may be: every model makes unit vectors,
# and a longer one (an "average face" scaled up) would be nearer to everybody.
UNIT_TOLERANCE = 1e-3

# Rows read per batch when a gallery is loaded (a batch of sealed rows is about 0.5 MB).
GALLERY_BATCH = 2048


@dataclass(frozen=True)
class ModelFacts:
    """What the store must know of an embedding model to refuse a forged template: its
    embedding size and the side of its aligned face (a square JPEG)."""

    embedding_dim: int
    input_size: int


class Gallery(NamedTuple):
    """Every template of one model, one row each: unpacks as ``names, person_ids, embeddings``.

    ``names[i]`` and ``person_ids[i]`` (int64) own row ``embeddings[i]`` of the (N, dim)
    float32 matrix. A person with several templates has several rows. With no templates the
    matrix is (0, 0)."""

    names: list[str]
    person_ids: np.ndarray
    embeddings: np.ndarray


@dataclass(frozen=True, eq=False)
class SealedSnapshot:
    """People and templates as stored (sealed with the site key ``site_key_id``), at ``generation``."""

    site_key_id: str
    generation: tuple[int, int, int, int, int]
    people: list[dict[str, Any]]
    templates: list[dict[str, Any]]


@dataclass(frozen=True)
class GalleryReport:
    """:meth:`Store.verify_gallery`: whether the gallery matches its record, and what it holds."""

    ok: bool
    people: int
    templates: int
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"gallery: {self.people} people and {self.templates} template(s) match their record"
        return f"gallery ALTERED: {self.problem}"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    people: int
    templates: int
    left_out: tuple[str, ...] = ()  # people with no templates, not exported (nothing to recognise them by)


@dataclass(frozen=True)
class ImportResult:
    added: int  # people new to this database
    replaced: int  # people already enrolled whose templates were replaced (on_conflict="replace")
    skipped: int  # people already enrolled and left as they were (on_conflict="skip")
    templates: int  # templates written
    left_out: int = 0  # people the file lists with no templates, not imported (on_conflict other than "replace")


def _some_names(names: Sequence[str]) -> str:
    """Up to five names, quoted, and how many more."""
    return ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


class _GalleryBuilder:
    """Fills a gallery row by row into a matrix allocated once for ``capacity`` rows (the count
    read before the rows), so the peak is about the final matrix, not a list of vectors plus
    their stack. It grows if more rows come (a concurrent enrollment) and shrinks in place if
    some are left out."""

    def __init__(self, capacity: int, model_id: str) -> None:
        self.capacity = max(int(capacity), 0)
        self.model_id = model_id
        self.names: list[str] = []
        self.pids = np.empty(self.capacity, dtype=np.int64)
        self.matrix: np.ndarray | None = None

    def append(self, name: str, person_id: int, vec: np.ndarray) -> None:
        n = len(self.names)
        if self.matrix is None:
            self.matrix = np.empty((max(self.capacity, 1), vec.size), dtype=np.float32)
        elif vec.size != self.matrix.shape[1]:
            raise StoreError(
                f"templates of model {self.model_id!r} have different sizes {sorted({self.matrix.shape[1], vec.size})}; "
                "re-embed them with `faceapp db reembed`"
            )
        if n == self.matrix.shape[0]:
            grown = max(16, 2 * n)
            self.matrix.resize((grown, self.matrix.shape[1]), refcheck=False)
            self.pids.resize(grown, refcheck=False)
        self.matrix[n] = vec
        if n >= self.pids.shape[0]:
            self.pids.resize(max(16, 2 * n), refcheck=False)
        self.pids[n] = person_id
        self.names.append(name)

    def gallery(self) -> Gallery:
        n = len(self.names)
        if self.matrix is None or n == 0:
            return Gallery([], np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
        if self.matrix.shape[0] != n:
            self.matrix.resize((n, self.matrix.shape[1]), refcheck=False)  # in place: no second copy
        if self.pids.shape[0] != n:
            self.pids.resize(n, refcheck=False)
        return Gallery(self.names, self.pids, self.matrix)


Guard = Callable[[Gallery], None]  # raises to refuse a write, given the gallery inside its transaction


class Store:
    """The enrollment database at ``url`` (e.g. ``sqlite:///C:/Users/me/faceapp/faceapp.db``).

    Opening it creates the database if needed and upgrades its schema to the newest
    revision. Pass ``engine`` instead to use an engine made elsewhere (it is not disposed by
    :meth:`close`).

    Face data is sealed with the site key (:mod:`faceapp.store.crypto`), which lives outside
    the database: ``site_key`` (a :class:`~faceapp.store.crypto.SiteKey`), else the key file
    ``key_file``, else the default key file in the user's config folder (created on first
    use). A database sealed with another key is refused. ``models`` (model id ->
    :class:`ModelFacts`) lets every write check an embedding's size against its model and is
    required to import a gallery."""

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: Engine | None = None,
        site_key: crypto.SiteKey | None = None,
        key_file: str | os.PathLike[str] | None = None,
        models: Mapping[str, ModelFacts] | None = None,
    ) -> None:
        self._key_path: Path | None = None
        if site_key is None:
            self._key_path = Path(key_file) if key_file else crypto.default_key_path()
            site_key = crypto.SiteKey.load_or_create(self._key_path)
        self._site_key = site_key
        self._models = dict(models) if models is not None else None
        if engine is None:
            if url is None:
                raise ValueError("Store needs a database url or an engine")
            engine = make_engine(url)
            self._owns_engine = True
        else:
            self._owns_engine = False
        self._engine = engine
        self.url = mask_url(engine.url)
        self._closed = False
        self._gallery_checked: tuple[str | None, float] | None = None  # (record value, when) of the last good check
        try:
            upgrade_to_head(engine)  # faceapp's or the alembic command line's: _open_keys does the rest
            self._reader = sessionmaker(engine, expire_on_commit=False)
            # reads of several statements that must agree (the offline snapshot, an export, the
            # log's verification, a gallery): one snapshot on PostgreSQL, whose default READ
            # COMMITTED gives each statement its own; a SQLite read transaction is one already
            self._snapshot_reader = sessionmaker(
                engine.execution_options(isolation_level="REPEATABLE READ")
                if engine.dialect.name == "postgresql" else engine, expire_on_commit=False)
            self._writer = sessionmaker(writer(engine), expire_on_commit=False)
            self._chain_key = self._open_keys()
        except BaseException:
            if self._owns_engine:
                engine.dispose()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def key_path(self) -> Path | None:
        """The key file the site key was read from (None when it was given in code)."""
        return self._key_path

    @property
    def site_key_id(self) -> str:
        """The id (not the key) of the site key this store seals face data with."""
        return self._site_key.key_id

    def close(self) -> None:
        """Release the database (idempotent). Later calls raise :class:`StoreError`."""
        if not self._closed:
            self._closed = True
            if self._owns_engine:
                self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r}{', closed' if self._closed else ''})"

    # -- people ----------------------------------------------------------------------------

    def add_person(
        self, name: str, *, embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes,
        guard: Guard | None = None, guard_after_id: int | None = None, event: str | None = None,
    ) -> Person:
        """Enroll a new person with their first template. DuplicatePerson if the name (or one
        that differs only in case or in invisible spacing) is taken.

        ``guard(gallery)`` (e.g. "this face already matches someone") is called inside the
        write transaction, under a lock that every enrollment takes, with the model's gallery
        as it is then: two doors enrolling one face under two names at once cannot both pass
        it; with ``guard_after_id`` it gets only the templates stored after that template id
        (the caller checked the older ones against its own copy of the gallery, so a large
        gallery is not read again under the lock). ``event`` (a detail) logs the enrollment in
        the same transaction."""
        name = normalize_name(name)
        values = self._template_values(embedding, model_id, quality, face_jpeg)
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            record = self._gallery_write(s)
            self._guard(s, model_id, guard, guard_after_id)
            if _find_person(s, name) is not None:
                raise _duplicate(name)
            now = utcnow()
            dek = crypto.new_data_key()
            person = PersonRow(name=name, name_key=name_key(name), created_at=now, updated_at=now)
            s.add(person)
            try:
                s.flush()
            except IntegrityError as exc:  # someone else enrolled the name meanwhile
                raise _duplicate(name) from exc
            person.data_key = self._site_key.wrap(dek, aad=_dek_aad(person.id, person.name_key))
            s.add(TemplateRow(person_id=person.id, created_at=now, **_sealed(dek, person.id, values)))
            s.flush()
            _check_dims(s)
            if event is not None:
                self._append_event(s, EventRow(time=utcnow(), kind="enroll", decided=name, person_id=person.id,
                                               detail=event))
            self._write_gallery_record(s, record)
            _bump_generation(s)
            return _to_person(person, template_count=1)

    def _guard(self, s: Session, model_id: str, guard: Guard | None, after_id: int | None = None) -> None:
        """Run an enrollment guard inside the write transaction, after the enrollment lock:
        SQLite's BEGIN IMMEDIATE already serialises writers; on PostgreSQL an advisory lock
        held to the end of the transaction does, and what the guard reads is then current."""
        if guard is None:
            return
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ENROLL_LOCK_KEY})
        guard(self._load_gallery(s, model_id, strict=False, after_id=after_id))

    def has_person(self, name: str) -> bool:
        try:
            name = normalize_name(name)
        except StoreError:
            return False
        with self._reading() as s:
            return _find_person(s, name) is not None

    def get_person(self, name: str) -> Person:
        """The enrolled person called ``name`` (case and spacing do not matter). UnknownPerson
        if nobody is."""
        name = normalize_name(name)
        with self._reading() as s:
            person = _require_person(s, name)
            return _to_person(person, template_count=_template_count(s, person.id))

    def list_people(self, search: str | None = None) -> list[Person]:
        """Everyone enrolled, sorted by name (case-insensitively); ``search`` keeps the names
        that contain it, ignoring case."""
        stmt = (
            select(PersonRow, func.count(TemplateRow.id))
            .outerjoin(TemplateRow, TemplateRow.person_id == PersonRow.id)
            .group_by(PersonRow.id)
        )
        with self._reading() as s:
            people = [_to_person(row, template_count=n) for row, n in s.execute(stmt).all()]
        needle = " ".join((search or "").split()).casefold()
        if needle:
            people = [p for p in people if needle in p.name.casefold()]
        return sorted(people, key=lambda p: (p.name.casefold(), p.name))

    def rename_person(self, old: str, new: str) -> Person:
        """Rename a person. Their templates follow; logged events keep the name they were
        logged under (the log is never rewritten) and stay linked to the person. The rename
        is itself an event."""
        old, new = normalize_name(old), normalize_name(new)
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            record = self._gallery_write(s)
            person = _require_person(s, old)
            if new != person.name:
                if name_key(new) != person.name_key and _find_person(s, new) is not None:
                    raise _duplicate(new)
                before = person.name
                if name_key(new) != person.name_key:  # the data key is bound to the name key: wrapped anew
                    dek = self._person_key(person)
                    person.data_key = self._site_key.wrap(dek, aad=_dek_aad(person.id, name_key(new)))
                person.name = new
                person.name_key = name_key(new)
                person.updated_at = utcnow()
                try:
                    s.flush()
                except IntegrityError as exc:
                    raise _duplicate(new) from exc
                self._append_event(
                    s, EventRow(time=utcnow(), kind="rename", claimed=before, decided=new, person_id=person.id,
                                detail=f"{before!r} renamed to {new!r}")
                )
                self._write_gallery_record(s, record)
                _bump_generation(s)
            return _to_person(person, template_count=_template_count(s, person.id))

    def remove_person(self, name: str) -> int:
        """Remove a person's biometric data: every template (embedding and face photo) and
        their data key, so that nothing of their face can be read back, even from database
        pages that still hold the old rows. Their logged events stay (with the name they
        were logged under); the removal is an event naming them and the template count, in
        the same transaction. Returns the number of templates removed.

        On SQLite the freed pages are overwritten (``secure_delete``) and the write-ahead
        log is checkpointed, so the face data does not linger in the file."""
        name = normalize_name(name)
        with self._writing() as s:
            record = self._gallery_write(s)
            person = _require_person(s, name)
            shown, pid = person.name, person.id
            removed = _template_count(s, person.id)
            nosync = {"synchronize_session": False}
            s.execute(delete(TemplateRow).where(TemplateRow.person_id == pid), execution_options=nosync)
            s.execute(delete(PersonRow).where(PersonRow.id == pid), execution_options=nosync)
            self._append_event(
                s, EventRow(time=utcnow(), kind="remove", decided=shown, person_id=pid,
                            detail=f"removed {shown!r}: {removed} template(s) and their face photos erased")
            )
            self._write_gallery_record(s, record)
            _bump_generation(s)
        self._checkpoint()
        self.purge_erased()
        log.info("removed %r and %d templates", shown, removed)
        return removed

    def purge_erased(self) -> list[str]:
        """PostgreSQL: push removed rows out of the server's files, best effort, and return the
        steps that could not be done. A removed person's wrapped data key stays in the table's
        pages until VACUUM and in the write-ahead log until its segment is gone: VACUUM, then
        two WAL switches with checkpoints; with the server's ``wal_recycle = off`` (and no WAL
        archive or replication slot keeping it) the old segments are deleted, and the key
        with them (docs/deployment.md). The sealed faces that stay in TOAST pages until a
        VACUUM FULL cannot be read without that key. Needs the table owner (VACUUM) and
        ``pg_checkpoint`` (CHECKPOINT); what this role may not do is logged and returned."""
        if self._engine.dialect.name != "postgresql":
            return []
        failed = []
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for sql in ("VACUUM people, templates", "SELECT pg_switch_wal()", "CHECKPOINT",
                        "SELECT pg_switch_wal()", "CHECKPOINT"):
                try:
                    conn.exec_driver_sql(sql)
                except SQLAlchemyError as exc:
                    failed.append(sql)
                    log.warning("erasure step %r not done on %s: %s", sql, self.url, describe_error(exc))
        return failed

    # -- templates -------------------------------------------------------------------------

    def add_template(
        self, name: str, *, embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes,
        guard: Guard | None = None, guard_after_id: int | None = None, event: str | None = None,
    ) -> Template:
        """Add one more template (another photo) to an enrolled person. UnknownPerson if they
        are not. ``guard`` and ``event`` as for :meth:`add_person`: the check that the face is
        nobody else's runs under the same enrollment lock as another door's enrollment."""
        return self._write_template(name, self._template_values(embedding, model_id, quality, face_jpeg), replace=False,
                                    guard=guard, guard_after_id=guard_after_id, event=event)

    def remove_template(self, template_id: int) -> Template:
        """Remove one of a person's templates (one photo: its embedding and face image). A
        person's last template is refused (remove the person instead); the removal is an
        event naming them, in the same transaction. Returns the removed template (without its
        face image). StoreError if there is no such template."""
        with self._writing() as s:
            record = self._gallery_write(s)
            row = s.get(TemplateRow, int(template_id))
            if row is None:
                raise StoreError(f"there is no template {template_id}")
            person = s.get(PersonRow, row.person_id)
            left = _template_count(s, person.id)
            if left <= 1:
                raise StoreError(f"that is {person.name!r}'s only photo; remove the person instead")
            removed = Template(id=row.id, person_id=person.id, person_name=person.name, embedding=np.empty(0, np.float32),
                               model_id=row.model_id, quality=float(row.quality), created_at=row.created_at)
            s.execute(delete(TemplateRow).where(TemplateRow.id == row.id), execution_options={"synchronize_session": False})
            person.updated_at = utcnow()
            self._append_event(
                s, EventRow(time=utcnow(), kind="remove", decided=person.name, person_id=person.id,
                            detail=f"removed one photo of {person.name!r} (template {row.id}); {left - 1} left")
            )
            self._write_gallery_record(s, record)
            _bump_generation(s)
        self._checkpoint()
        self.purge_erased()
        log.info("removed template %d of %r", removed.id, removed.person_name)
        return removed

    def replace_templates(
        self, name: str, *, embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes,
        guard: Guard | None = None, guard_after_id: int | None = None, event: str | None = None,
    ) -> Template:
        """Re-enroll: remove all of the person's templates and store this one instead
        (``guard`` and ``event`` as for :meth:`add_person`)."""
        return self._write_template(name, self._template_values(embedding, model_id, quality, face_jpeg), replace=True,
                                    guard=guard, guard_after_id=guard_after_id, event=event)

    def _write_template(self, name: str, values: dict[str, Any], *, replace: bool,
                        guard: Guard | None = None, guard_after_id: int | None = None,
                        event: str | None = None) -> Template:
        name = normalize_name(name)
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            record = self._gallery_write(s)
            self._guard(s, values["model_id"], guard, guard_after_id)
            person = _require_person(s, name)
            dek = self._person_key(person)
            now = utcnow()
            if replace:
                s.execute(
                    delete(TemplateRow).where(TemplateRow.person_id == person.id),
                    execution_options={"synchronize_session": False},
                )
                person.updated_at = now
            row = TemplateRow(person_id=person.id, created_at=now, **_sealed(dek, person.id, values))
            s.add(row)
            s.flush()
            _check_dims(s)
            if event is not None:
                self._append_event(s, EventRow(time=utcnow(), kind="enroll", decided=person.name,
                                               person_id=person.id, detail=event))
            self._write_gallery_record(s, record)
            _bump_generation(s)
            return _to_template(row, person.name, values["embedding_array"], values["face_jpeg"])

    def templates(self, model_id: str | None = None, person: str | None = None) -> list[Template]:
        """Stored templates (with their face images), oldest first, optionally of one model
        and/or one person (UnknownPerson if that person is not enrolled)."""
        stmt = select(TemplateRow, PersonRow).join(PersonRow).order_by(TemplateRow.id)
        if model_id is not None:
            stmt = stmt.where(TemplateRow.model_id == model_id)
        with self._reading(snapshot=True) as s:
            self._check_site_key(s)
            self._check_gallery(s, reuse=person is not None)  # one person's: a display read
            if person is not None:
                row = _require_person(s, normalize_name(person))
                stmt = stmt.where(TemplateRow.person_id == row.id)
            out = []
            keys: dict[int, bytes] = {}
            for t, p in s.execute(stmt).all():
                emb, face = self._open_template(t, p, keys)
                out.append(_to_template(t, p.name, emb, face))
            return out

    def model_ids(self) -> dict[str, int]:
        """How many templates each embedding model made, by model id."""
        stmt = (
            select(TemplateRow.model_id, func.count(TemplateRow.id))
            .group_by(TemplateRow.model_id)
            .order_by(TemplateRow.model_id)
        )
        with self._reading() as s:
            return {m: n for m, n in s.execute(stmt).all()}

    def gallery(self, model_id: str, *, strict: bool = True) -> Gallery:
        """Every template made by ``model_id`` as a matrix for matching.

        With ``strict`` (the default) it raises ModelMismatch if any stored template was made
        by another model, since those people could not be recognised; with ``strict=False``
        such templates are left out.

        Fails closed (StoreError, the whole gallery) when the people and templates do not match
        the gallery record (someone added, removed or renamed rows around faceapp), or when a
        template cannot be opened (unsealed, its person's data key not opening under their name,
        or failing its seal): skipping them would hide the tampering. A template that opens but
        is not unit length or of the model's size is left out with an error in the log."""
        with self._reading(snapshot=True) as s:
            self._check_site_key(s)
            self._check_gallery(s)
            return self._load_gallery(s, model_id, strict=strict)

    def _load_gallery(self, s: Session, model_id: str, *, strict: bool, after_id: int | None = None) -> Gallery:
        if strict:
            others = s.execute(
                select(TemplateRow.model_id, func.count(TemplateRow.id))
                .where(TemplateRow.model_id != model_id)
                .group_by(TemplateRow.model_id)
                .order_by(TemplateRow.model_id)
            ).all()
            if others:
                raise _model_mismatch(model_id, {m: n for m, n in others})
        where = (TemplateRow.model_id == model_id, TemplateRow.id > (after_id if after_id is not None else -1))
        count = s.execute(select(func.count(TemplateRow.id)).join(PersonRow).where(*where)).scalar_one()
        # Streamed: yield_per makes PostgreSQL use a server-side cursor (SQLite reads lazily
        # anyway), so only one batch of sealed rows is held while the matrix fills.
        stmt = (
            select(TemplateRow.id, TemplateRow.person_id, PersonRow.name, PersonRow.name_key, TemplateRow.embedding,
                   TemplateRow.dim, TemplateRow.sealed, PersonRow.data_key)
            .join(PersonRow)
            .where(*where)
            .order_by(TemplateRow.id)
            .execution_options(yield_per=GALLERY_BATCH)
        )
        expected = self._models[model_id].embedding_dim if self._models and model_id in self._models else None
        out = _GalleryBuilder(count, model_id)
        for batch in s.execute(stmt).partitions():
            keys: dict[int, bytes] = {}  # per batch: a person's templates are usually enrolled together
            for r in batch:
                try:
                    vec = self._open_embedding(r.id, r.person_id, r.name_key, r.embedding, r.dim, r.sealed,
                                               r.data_key, keys)
                except StoreError as exc:  # never left out quietly: that would hide the tampering
                    raise StoreError(
                        f"database {self.url}: template {r.id} of person {r.person_id} ({r.name!r}) cannot be "
                        f"opened: {exc}; the database was altered, so its gallery is refused (nobody is "
                        "recognised from it) until it is restored from a backup"
                    ) from None
                try:
                    _check_unit(vec)
                    if expected is not None and vec.size != expected:
                        raise StoreError(f"it has {vec.size} values, but model {model_id!r} makes {expected}")
                except (StoreError, ValueError) as exc:
                    log.error("template %d of %r is left out of the gallery: %s", r.id, r.name, exc)
                    continue
                out.append(r.name, r.person_id, vec)
        return out.gallery()

    def face_jpeg(self, template_id: int) -> bytes:
        """The aligned face image (JPEG bytes) a template was made from."""
        with self._reading(snapshot=True) as s:
            self._check_site_key(s)
            self._check_gallery(s, reuse=True)  # a display read
            found = s.execute(select(TemplateRow, PersonRow).join(PersonRow).where(TemplateRow.id == template_id)).first()
            if found is None:
                raise StoreError(f"there is no template with id {template_id}")
            return self._open_template(found[0], found[1], {})[1]

    def update_embedding(self, template_id: int, embedding: np.ndarray, model_id: str) -> Template:
        """Replace one template's embedding (e.g. re-embedded from its stored face)."""
        self.update_embeddings([(template_id, embedding)], model_id)
        with self._reading() as s:
            row, person = s.execute(
                select(TemplateRow, PersonRow).join(PersonRow).where(TemplateRow.id == template_id)
            ).one()
            emb, face = self._open_template(row, person, {})
            return _to_template(row, person.name, emb, face)

    def update_embeddings(self, items: Iterable[tuple], model_id: str) -> int:
        """Replace many templates' embeddings, all made by ``model_id``, in one transaction
        (a re-embed either finishes or changes nothing). Items are ``(template, embedding)``
        or ``(template, embedding, face_jpeg)`` when the stored aligned face changes too
        (its geometry follows the model's alignment template). Returns the number updated.
        Everything is checked and prepared before the write lock is taken.

        ``template`` is the :class:`~faceapp.types.Template` as the caller read it: each row
        is updated only if it still belongs to that person and still holds that model's
        embedding; a template removed, re-enrolled or re-embedded since it was read refuses
        the whole batch (StoreError, nothing changed), since what was computed from the old
        read would otherwise be stored under whoever holds the row now. A bare template id
        updates whatever the row holds now (for a caller that just read it)."""
        _check_model_id(model_id)
        prepared = []
        for it in items:
            blob, dim = self._embedding_bytes(it[1], model_id)
            jpeg = it[2] if len(it) > 2 else None
            if jpeg is not None and not isinstance(jpeg, (bytes, bytearray, memoryview)):
                raise TypeError(f"face_jpeg must be bytes, got {type(jpeg).__name__}")
            read = it[0] if isinstance(it[0], Template) else None
            tid = read.id if read is not None else int(it[0])
            prepared.append((tid, read, blob, dim, None if jpeg is None else bytes(jpeg)))
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            keys: dict[int, bytes] = {}
            for tid, read, blob, dim, jpeg in prepared:
                found = s.execute(
                    select(TemplateRow.person_id, TemplateRow.model_id, PersonRow.data_key, PersonRow.name_key)
                    .join(PersonRow).where(TemplateRow.id == tid)
                ).first()
                if read is None:
                    if found is None:
                        raise StoreError(f"there is no template with id {tid}; nothing was updated")
                    person_id, old_model = found.person_id, found.model_id
                else:
                    person_id, old_model = read.person_id, read.model_id
                    if found is None or (found.person_id, found.model_id) != (person_id, old_model):
                        raise _changed_meanwhile(read)
                dek = self._unwrap(person_id, found.name_key, found.data_key, keys)
                values: dict[str, Any] = dict(
                    embedding=crypto.seal(dek, blob, aad=_aad(person_id, "embedding")), dim=dim,
                    model_id=model_id, sealed=True,
                )
                if jpeg is not None:
                    values["face_jpeg"] = crypto.seal(dek, jpeg, aad=_aad(person_id, "face"))
                # conditional on what was read: on PostgreSQL a row changed since the SELECT
                # above (by a transaction committed meanwhile) is re-checked here
                res = s.execute(
                    update(TemplateRow)
                    .where(TemplateRow.id == tid, TemplateRow.person_id == person_id,
                           TemplateRow.model_id == old_model)
                    .values(**values),
                    execution_options={"synchronize_session": False},
                )
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    if read is None:
                        raise StoreError(f"template {tid} changed while it was being updated; nothing was updated")
                    raise _changed_meanwhile(read)
            _check_dims(s)
            if prepared:
                _bump_generation(s)
        return len(prepared)

    # -- events ----------------------------------------------------------------------------

    def log_event(
        self,
        kind: str,
        *,
        decision: Decision | None = None,
        claimed: str | None = None,
        decided: str | None = None,
        distance: float | None = None,
        threshold: float | None = None,
        detail: str = "",
        time: datetime | None = None,
        uid: str | None = None,
    ) -> Event:
        """Record one decision (or an admin action) at the end of the hash-chained log. It
        is linked to the person ``decided`` (else ``claimed``) names when they are enrolled.
        ``time`` defaults to now (naive times are UTC). The event is committed when this
        returns; a failure raises :class:`StoreError` and nothing is written. ``uid`` makes
        the write idempotent: an event with that uid already logged is returned as it is
        (a door delivering its offline queue again after a crash logs nothing twice)."""
        kind = kind.strip()
        if not kind:
            raise ValueError("an event needs a kind, e.g. 'verify'")
        if len(kind) > 32:
            raise ValueError(f"an event kind has at most 32 characters, got {len(kind)}")
        if kind in _STORE_KINDS:  # a "remove" logged for a live person would refuse the whole gallery
            raise ValueError(f"events of kind {kind!r} are logged by the store itself, with the change they record")
        if decision is not None:
            decision = Decision(decision)
        claimed, decided = _event_name(claimed), _event_name(decided)
        detail = (detail or "").replace("\x00", "\ufffd")
        row = EventRow(
            time=as_utc(time) if time is not None else utcnow(),
            kind=kind,
            decision=decision.value if decision is not None else None,
            claimed=claimed,
            decided=decided,
            distance=None if distance is None else float(distance),
            threshold=None if threshold is None else float(threshold),
            detail=detail or "",
            uid=uid,
        )
        with self._writing() as s:
            if uid is not None:
                self._lock_head(s)
                done = s.scalar(select(EventRow).where(EventRow.uid == uid))
                if done is not None:
                    return _to_event(done)
            for name in (decided, claimed):
                person = _find_person_lenient(s, name) if name else None
                if person is not None:
                    row.person_id = person.id
                    break
            self._append_event(s, row)
            return _to_event(row)

    def events(
        self,
        *,
        person: str | None = None,
        decision: Decision | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Logged events, newest first. ``person`` keeps events that claimed, decided or are
        linked to that name (enrolled or not); ``since <= time < until`` (naive times are UTC)."""
        stmt = select(EventRow).order_by(EventRow.time.desc(), EventRow.id.desc())
        if decision is not None:
            stmt = stmt.where(EventRow.decision == Decision(decision).value)
        if since is not None:
            stmt = stmt.where(EventRow.time >= since)
        if until is not None:
            stmt = stmt.where(EventRow.time < until)
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            stmt = stmt.limit(limit)
        with self._reading() as s:
            if person is not None:
                name = " ".join(person.split())
                conditions = [EventRow.claimed == name, EventRow.decided == name]
                row = _find_person_lenient(s, name) if name else None
                if row is not None:
                    conditions.append(EventRow.person_id == row.id)
                stmt = stmt.where(or_(*conditions))
            return [_to_event(e) for e in s.scalars(stmt).all()]

    def verify_events(self) -> eventlog.ChainReport:
        """Check the whole access log against its hash chain: the first event that was
        edited, deleted or inserted behind the application's back, or ``ok``."""
        with self._reading(snapshot=True) as s:
            head = self._read_head(s)
            rows = (
                eventlog.ChainedRow(r.id, r.prev_hash, r.hash, _event_content(r))
                for r in s.scalars(select(EventRow).order_by(EventRow.id).execution_options(yield_per=2000))
            )
            report = eventlog.verify_chain(rows, self._chain_key, head=head if not isinstance(head, str) else None)
        if isinstance(head, str) and report.ok:  # the chain holds, but its recorded end is gone or forged
            return eventlog.ChainReport(False, report.checked, None, head)
        return report

    def _append_event(self, s: Session, row: EventRow) -> EventRow:
        """Chain ``row`` onto the log's end and insert it (inside the caller's transaction).
        The end of the chain is a meta row locked for the transaction, so that two doors
        writing at once (PostgreSQL) cannot both chain onto the same event."""
        head_row = self._lock_head(s)
        head = self._parse_head(head_row.value if head_row is not None else None)
        if isinstance(head, str):  # never chain onto a doctored end: that would make it verify
            raise StoreError(f"{head}, so the access log was altered and nothing more is logged to it; "
                             "`faceapp events verify` says where (restore the database from a backup)")
        prev = head[1]
        row.prev_hash = prev
        row.hash = eventlog.chain_hash(self._chain_key, prev, _event_content(row))
        s.add(row)
        s.flush()
        head_row.value = self._head_value(row.id, row.hash)
        return row

    def _lock_head(self, s: Session) -> MetaRow | None:
        """The chain's end, locked to the end of the transaction (one writer of events at a time)."""
        return s.execute(select(MetaRow).where(MetaRow.key == EVENT_HEAD_KEY).with_for_update()).scalar_one_or_none()

    def _head_value(self, event_id: int, event_hash: str) -> str:
        mac = hmac.new(self._chain_key, f"head {event_id} {event_hash}".encode(), hashlib.sha256).hexdigest()
        return f"{event_id} {event_hash} {mac}"

    def _read_head(self, s: Session) -> tuple[int, str] | str:
        """The recorded end of the chain, ``(0, GENESIS)`` before the first event; or, when the
        record is missing, blank or does not carry a valid MAC, what is wrong with it."""
        return self._parse_head(s.scalar(select(MetaRow.value).where(MetaRow.key == EVENT_HEAD_KEY)))

    def _parse_head(self, value: str | None) -> tuple[int, str] | str:
        # The record is made when the database is sealed (MAC'd, also while the log is
        # empty) and only ever updated, so it is missing or blank only if someone deleted
        # or blanked it, e.g. to hide events cut off the end of the log, or a wiped log.
        if value is None:
            return "the record of the log's newest event was deleted"
        if not value:
            return "the record of the log's newest event was blanked"
        try:
            event_id, event_hash, _mac = value.split(" ")
            if hmac.compare_digest(self._head_value(int(event_id), event_hash), value):
                return int(event_id), event_hash
        except ValueError:
            pass
        return "the record of the log's newest event was altered"

    # -- the gallery record ----------------------------------------------------------------
    #
    # Which people (id, name key, name) and templates (id, person id) make up the gallery is
    # MAC'd (meta GALLERY_HEAD_KEY, under a key derived from the chain key): every write that
    # changes them checks the record and writes it anew in its transaction, with the record
    # locked to the end of it (two doors enrolling at once on PostgreSQL serialise); every read
    # of templates checks it in its snapshot. A mismatch is tampering and fails closed.

    def verify_gallery(self) -> GalleryReport:
        """Check the gallery against its record, and that every person's data key opens under
        their name (what `faceapp events verify` reports besides the log)."""
        with self._reading(snapshot=True) as s:
            self._check_site_key(s)
            people, templates = (s.scalar(select(func.count()).select_from(t)) for t in (_PEOPLE, _TEMPLATES))
            problem = self._gallery_problem(s, s.scalar(select(MetaRow.value).where(MetaRow.key == GALLERY_HEAD_KEY)))
            if problem is None:
                for pid, key, wrapped in s.execute(select(PersonRow.id, PersonRow.name_key, PersonRow.data_key)
                                                   .order_by(PersonRow.id)):
                    try:
                        self._unwrap(pid, key, wrapped, {})
                    except StoreError as exc:
                        problem = str(exc)
                        break
        return GalleryReport(problem is None, people, templates, problem)

    def _lock_gallery(self, s: Session) -> MetaRow | None:
        """The gallery record, locked to the end of the transaction (one gallery writer at a time)."""
        return s.execute(select(MetaRow).where(MetaRow.key == GALLERY_HEAD_KEY).with_for_update()).scalar_one_or_none()

    def _gallery_write(self, s: Session) -> MetaRow:
        """Start a write that changes the gallery: its record locked and checked (a write must
        never record an altered gallery as good). Pass it to :meth:`_write_gallery_record`."""
        record = self._lock_gallery(s)
        self._refuse_altered(self._gallery_problem(s, record.value if record is not None else None))
        assert record is not None
        return record

    #: display reads (one person's templates, one face) reuse a check of the same record value
    #: made this long ago: a page of thumbnails is one read per row, and each re-hashing the whole
    #: roster took seconds a page at 100,000 people. The door's gallery and writes never reuse it.
    GALLERY_CHECK_REUSE_S = 2.0

    def _check_gallery(self, s: Session, *, reuse: bool = False) -> None:
        """Refuse a read of templates from a gallery that does not match its record (``reuse``:
        a display read, which may rely on a check of the same record value made within
        :attr:`GALLERY_CHECK_REUSE_S`)."""
        value = s.scalar(select(MetaRow.value).where(MetaRow.key == GALLERY_HEAD_KEY))
        last = self._gallery_checked
        if reuse and last is not None and last[0] == value and time.monotonic() - last[1] < self.GALLERY_CHECK_REUSE_S:
            return
        self._gallery_checked = None
        self._refuse_altered(self._gallery_problem(s, value))
        self._gallery_checked = (value, time.monotonic())

    def _refuse_altered(self, problem: str | None) -> None:
        if problem is not None:
            raise StoreError(f"database {self.url}: {problem}, so it was altered; its gallery is refused (nobody is "
                             "recognised from it) until it is restored from a backup; `faceapp events verify` reports it")

    def _write_gallery_record(self, s: Session, record: MetaRow) -> None:
        """The record made anew (always the current format, v2) of the people and templates as
        this transaction leaves them."""
        s.flush()
        record.value = self._gallery_value(_RECORD_FORMAT, *_roster(s, _RECORD_FORMAT))
        if record not in s:
            s.merge(record)
        s.flush()

    def _gallery_value(self, fmt: str, people: int, templates: int, digest: bytes) -> str:
        """The record's value: its format, counts and a MAC over all of them and the roster's
        digest (so that a record cannot be relabelled as another format)."""
        key = hmac.new(self._chain_key, b"faceapp/gallery-record-key", hashlib.sha256).digest()
        mac = hmac.new(key, f"gallery {fmt} {people} {templates} ".encode() + digest, hashlib.sha256).hexdigest()
        return f"{fmt} {people} {templates} {mac}"

    def _gallery_problem(self, s: Session, value: str | None, *, fmt: str | None = None) -> str | None:
        """None when the people and templates are those the record vouches for and no live
        person's removal is in the log; else what is wrong. ``fmt`` is the record's format this
        database keeps (v1 only for :meth:`_upgrade_gallery_record`, once)."""
        if value is None:
            return "the gallery record (meta 'gallery_head') was deleted"
        if not value:
            return "the gallery record (meta 'gallery_head') was blanked"
        fmt = fmt or _RECORD_FORMAT
        found = value.split(" ", 1)[0]
        if found != fmt:
            if found == "v1":
                return ("the gallery record (meta 'gallery_head') is in the format of before schema 0005 (v1, which "
                        "does not cover when each person was created), but this database's record was rewritten "
                        "as v2: an older gallery record was put back")
            return "the gallery record (meta 'gallery_head') was altered"
        people, templates, digest = _roster(s, fmt)
        if hmac.compare_digest(self._gallery_value(fmt, people, templates, digest), value):
            return _rolled_back_problem(s)
        try:
            _, listed_people, listed_templates, _ = value.split(" ")
            listed = f"it lists {int(listed_people)} people and {int(listed_templates)} templates"
        except ValueError:
            return "the gallery record (meta 'gallery_head') was altered"
        return (f"its people and templates do not match the gallery record ({listed}; the database holds {people} "
                f"people and {templates} templates): people, names or templates were added, removed or changed "
                "around faceapp")

    # -- keys ------------------------------------------------------------------------------

    def _open_keys(self) -> bytes:
        """Check that this database is sealed with our site key and return the event chain's
        key. The first open of a database (new, or from before sealing) seals its stored
        faces and templates, makes the chain key and chains the events it already has.

        Done here, on every open, rather than in the upgrade: the schema may have been upgraded
        by the alembic command line, or by an older faceapp stopped between its upgrade's
        commit and its sealing commit, and both must still be sealed (and repaired) once."""
        with self._reading() as s:
            meta = _meta(s, SITE_KEY_ID_KEY, _CHAIN_KEY_KEY)
        if meta.get(SITE_KEY_ID_KEY) is None or meta.get(_CHAIN_KEY_KEY) is None:
            with self._writing() as s:
                if s.get_bind().dialect.name == "postgresql":  # doors starting together: one seals
                    s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INIT_LOCK_KEY})
                meta = _meta(s, SITE_KEY_ID_KEY, _CHAIN_KEY_KEY)
                if meta.get(SITE_KEY_ID_KEY) is None or meta.get(_CHAIN_KEY_KEY) is None:
                    self._initialise_sealing(s, meta)
                    meta = _meta(s, SITE_KEY_ID_KEY, _CHAIN_KEY_KEY)
        stored = meta[SITE_KEY_ID_KEY]
        if stored != self._site_key.key_id and self._key_path is not None:
            # a key rotation interrupted by a crash leaves the database's key beside the key file
            self._site_key = crypto.find_key(stored, self._key_path)
            log.warning("database %s is sealed with key %s, found among the key file's rotation leftovers; "
                        "finish the rotation with `faceapp db rotate-key`", self.url, stored)
        if stored != self._site_key.key_id:
            raise StoreError(
                f"database {self.url} is sealed with site key {stored}, but the key in use is "
                f"{self._site_key.key_id}; start faceapp with that database's key file (see docs/security.md)"
            )
        self._chain_key, kept = self._unwrap_chain_key(self._site_key, meta[_CHAIN_KEY_KEY])
        self._repair_blank_head()
        if kept is None:
            self._bind_gallery()
        elif kept == "v1":
            self._upgrade_gallery_record()
        return self._chain_key

    @staticmethod
    def _unwrap_chain_key(key: crypto.SiteKey, value: str) -> tuple[bytes, str | None]:
        """The chain key, and the format of gallery record the database keeps, as its wrapping
        says: None when it is still wrapped the 0003 way (no gallery record yet), "v1" as
        faceapp wrapped it at schema 0004, "v2" since 0005. The wrapping is the MAC'd marker
        that a missing or blank record, or a record of an older format, is tampering."""
        blob = base64.b64decode(value)
        for aad, kept in ((_CHAIN_AAD, _RECORD_FORMAT), (_V1_CHAIN_AAD, "v1")):
            try:
                return key.unwrap(blob, aad=aad), kept
            except crypto.DecryptionError:
                pass
        return key.unwrap(blob, aad=_LEGACY_CHAIN_AAD), None

    def _bind_gallery(self) -> None:
        """Once, for a database sealed before schema 0004 (its chain key wrapped the old way):
        every data key is wrapped again bound to its person's id and name key, the chain key
        bound to the gallery record, and the record made, in one transaction logged as a
        ``seal-gallery`` event. Only a blank record (what migration 0004 leaves) of a database
        whose every data key opens the old way is recorded so: a record deleted or already
        made, a data key bound to its name already or opening under no name, or an earlier
        ``seal-gallery`` event is tampering (someone restoring old rows and the old chain key
        to have an altered gallery recorded afresh), refused with nothing changed."""
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            record = self._lock_gallery(s)
            chain = s.get(MetaRow, _CHAIN_KEY_KEY)
            chain_key, kept = self._unwrap_chain_key(self._site_key, chain.value)
            if kept is not None:  # another process (a door starting at the same moment) did it
                return
            altered = (f"database {self.url} keeps its keys as a faceapp of schema 0003 did, but {{}}: it was "
                       "altered (old rows or keys put back to have the gallery recorded afresh); restore it from "
                       "a backup")
            if record is None or record.value != "":
                raise StoreError(altered.format("its gallery record was " + ("deleted" if record is None else "made")))
            if s.scalar(select(func.count(EventRow.id)).where(EventRow.kind.in_((_SEAL_KIND, _SEAL_V2_KIND)))):
                raise StoreError(altered.format("its log says its gallery was recorded before"))
            people = s.scalars(select(PersonRow).order_by(PersonRow.id)).all()
            for person in people:
                if person.data_key is None:
                    raise StoreError(altered.format(f"person {person.id} has no data key"))
                try:
                    dek = self._site_key.unwrap(bytes(person.data_key), aad=_legacy_dek_aad(person.id))
                except crypto.DecryptionError:
                    raise StoreError(altered.format(f"the data key of person {person.id} ({person.name!r}) does "
                                                    "not open as that faceapp wrapped it")) from None
                person.data_key = self._site_key.wrap(dek, aad=_dek_aad(person.id, person.name_key))
            chain.value = base64.b64encode(self._site_key.wrap(chain_key, aad=_CHAIN_AAD)).decode("ascii")
            self._write_gallery_record(s, record)
            self._log_sealing(s, _SEAL_KIND, f"{len(people)} data key(s) bound to their people's names, and the "
                                             "gallery record made (schema 0004)")

    def _upgrade_gallery_record(self) -> None:
        """Once, for a database whose gallery record is still v1 (faceapp at schema 0004, its
        chain key wrapped so): the record is checked as v1 (and against the log's removals) and
        made anew as v2, which covers when each person was created, and the chain key wrapped
        bound to "this database keeps a v2 record", in one transaction logged as a
        ``seal-gallery-v2`` event. From then on a v1 record is tampering; and a database that
        claims to be v1 again (its chain key's wrapping put back from an older copy) is refused
        when its log holds that event."""
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            record = self._lock_gallery(s)
            chain = s.get(MetaRow, _CHAIN_KEY_KEY)
            chain_key, kept = self._unwrap_chain_key(self._site_key, chain.value)
            if kept != "v1":  # another process did it
                return
            if s.scalar(select(func.count(EventRow.id)).where(EventRow.kind == _SEAL_V2_KIND)):
                raise StoreError(f"database {self.url} keeps its gallery record as faceapp did at schema 0004 (v1), "
                                 "but its log says that record was rewritten as v2 before: it was altered (an older "
                                 "record and key put back); restore it from a backup")
            self._refuse_altered(self._gallery_problem(s, record.value if record is not None else None, fmt="v1"))
            assert record is not None
            chain.value = base64.b64encode(self._site_key.wrap(chain_key, aad=_CHAIN_AAD)).decode("ascii")
            self._write_gallery_record(s, record)
            self._log_sealing(s, _SEAL_V2_KIND,
                              "the gallery record rewritten as v2, covering when each person was created (schema 0005)")

    def _log_sealing(self, s: Session, kind: str, detail: str) -> None:
        """One upgrade of the sealing, logged as event ``kind`` in its own transaction ``s`` (not
        onto a log whose end record is not intact: that is reported, and refused, elsewhere)."""
        head = self._lock_head(s)
        if isinstance(self._parse_head(head.value if head is not None else None), str):
            log.warning("database %s: %s; not logged, its log's end record is not intact", self.url, detail)
        else:
            self._append_event(s, EventRow(time=utcnow(), kind=kind, detail=detail))
        log.info("database %s: %s", self.url, detail)

    def _repair_blank_head(self) -> None:
        """Sealing before schema 0003 left the record of an empty log blank; since 0003 it is
        MAC'd from the start and a blank one is tampering. Once the key records are known to
        be good (the chain key unwrapped with the database's key, a rotation leftover too), a
        blank record of a log with no event at all is given the MAC'd record of an empty log.
        Checked on every open, so an upgrade by the alembic command line is repaired as well;
        a blank record of a log that has events is left for verify to report."""
        with self._reading() as s:
            if s.scalar(select(MetaRow.value).where(MetaRow.key == EVENT_HEAD_KEY)) != "":
                return
        with self._writing() as s:
            head = self._lock_head(s)
            if head is not None and head.value == "" and s.scalar(select(func.count(EventRow.id))) == 0:
                head.value = self._head_value(0, eventlog.GENESIS)
                log.info("database %s: the blank record of its empty log (sealed before schema 0003) "
                         "was given its MAC'd form", self.url)

    def _initialise_sealing(self, s: Session, meta: Mapping[str, str]) -> None:
        """Seal a database: data keys for its people, its templates sealed, the chain key, its
        events chained and the record of the chain's end. Only a database that has no key
        records at all may be sealed, and only one that shows no trace of sealing may hold
        anything: new, or from before sealing (schema 0001, also when an older faceapp or the
        alembic command line upgraded it but did not seal it), where no person has a data key,
        no template is sealed, no event is chained and the chain's end was never recorded.
        A sealed database whose key records were deleted (to have its edited log chained
        afresh, or templates written in the clear sealed) is refused as altered."""
        if meta.get(SITE_KEY_ID_KEY) is not None:
            raise StoreError(f"database {self.url} has lost its event-chain key (meta {_CHAIN_KEY_KEY!r}): "
                             "it was altered; restore it from a backup")
        if meta.get(_CHAIN_KEY_KEY) is not None:
            raise StoreError(f"database {self.url} has lost the record of its site key (meta {SITE_KEY_ID_KEY!r}): "
                             "it was altered; restore it from a backup")
        traces = s.execute(select(
            select(func.count(PersonRow.id)).where(PersonRow.data_key.is_not(None)).scalar_subquery(),
            select(func.count(TemplateRow.id)).where(TemplateRow.sealed.is_(True)).scalar_subquery(),
            select(func.count(EventRow.id)).where(EventRow.hash.is_not(None)).scalar_subquery(),
            select(func.count(MetaRow.key)).where(MetaRow.key == EVENT_HEAD_KEY).scalar_subquery(),
        )).one()
        if any(traces):  # it was sealed: never sealed afresh
            held = s.execute(select(
                select(func.count(PersonRow.id)).scalar_subquery(),
                select(func.count(TemplateRow.id)).scalar_subquery(),
                select(func.count(EventRow.id)).scalar_subquery(),
            )).one()
            raise StoreError(
                f"database {self.url} holds {held[0]} people, {held[1]} templates and {held[2]} events but no "
                "record of its site key and event-chain key, and was sealed before: it was altered (keys deleted "
                "to have its log or templates sealed afresh); restore it from a backup"
            )
        keys: dict[int, bytes] = {}
        people = s.scalars(select(PersonRow).order_by(PersonRow.id)).all()
        for person in people:
            if person.data_key is None:
                dek = crypto.new_data_key()
                person.data_key = self._site_key.wrap(dek, aad=_dek_aad(person.id, person.name_key))
                keys[person.id] = dek
        wrapped = {p.id: (p.name_key, p.data_key) for p in people}
        sealed = 0
        for t in s.scalars(select(TemplateRow).where(TemplateRow.sealed.is_(False))).all():
            dek = self._unwrap(t.person_id, *wrapped[t.person_id], keys)
            t.embedding = crypto.seal(dek, bytes(t.embedding), aad=_aad(t.person_id, "embedding"))
            t.face_jpeg = crypto.seal(dek, bytes(t.face_jpeg), aad=_aad(t.person_id, "face"))
            t.sealed = True
            sealed += 1
        chain_key = crypto.new_data_key()
        s.add(MetaRow(key=SITE_KEY_ID_KEY, value=self._site_key.key_id))
        wrapped = self._site_key.wrap(chain_key, aad=_CHAIN_AAD)
        s.merge(MetaRow(key=_CHAIN_KEY_KEY, value=base64.b64encode(wrapped).decode("ascii")))
        s.flush()
        self._chain_key = chain_key
        # the gallery record too (migration 0004 left it blank; a database sealed here at an
        # older schema, with the migrations folder of one, has none yet)
        self._write_gallery_record(s, s.get(MetaRow, GALLERY_HEAD_KEY) or MetaRow(key=GALLERY_HEAD_KEY, value=""))
        chained = 0
        prev, last_id = eventlog.GENESIS, None
        for e in s.scalars(select(EventRow).order_by(EventRow.id)).all():
            if e.hash is not None:  # cannot happen before the first open: the app always chains
                raise StoreError(f"event {e.id} is chained but the database has no chain key; it was altered")
            e.prev_hash = prev
            e.hash = eventlog.chain_hash(chain_key, prev, _event_content(e))
            prev, last_id = e.hash, e.id
            chained += 1
        # the chain's end exists from the start, MAC'd also while the log is empty, so that
        # appending only ever updates it (a door's database role may update that row but insert
        # nothing into meta) and a missing or blank record is always tampering
        s.merge(MetaRow(key=EVENT_HEAD_KEY, value=self._head_value(last_id if last_id is not None else 0, prev)))
        s.flush()
        if sealed or chained:
            log.info("sealed %d template(s) and chained %d event(s) of %s", sealed, chained, self.url)

    def rotate_site_key(self, new_key: crypto.SiteKey) -> int:
        """Re-wrap every person's data key and the chain key with ``new_key``, in one
        transaction (the data itself is not re-encrypted: it is sealed with the data keys).
        Returns the number of people re-wrapped. The caller saves ``new_key`` first and
        retires the old key file only after this returns (faceapp db rotate-key)."""
        with self._writing() as s:
            # the key record locked first: a write that wraps with the old key (it holds the
            # record shared) commits before the people are read, or waits and sees the new key
            self._check_site_key(s, writing=True, exclusive=True)
            n = 0
            for person in s.scalars(select(PersonRow).order_by(PersonRow.id)).all():
                dek = self._person_key(person)
                person.data_key = new_key.wrap(dek, aad=_dek_aad(person.id, person.name_key))
                n += 1
            chain = s.get(MetaRow, _CHAIN_KEY_KEY)
            wrapped = new_key.wrap(self._chain_key, aad=_CHAIN_AAD)
            chain.value = base64.b64encode(wrapped).decode("ascii")
            s.get(MetaRow, SITE_KEY_ID_KEY).value = new_key.key_id
            self._append_event(s, EventRow(time=utcnow(), kind="rotate-key",
                                           detail=f"site key {self._site_key.key_id} replaced by {new_key.key_id}; "
                                           f"{n} data key(s) re-wrapped"))
        self._site_key = new_key
        return n

    def _check_site_key(self, s: Session, *, writing: bool = False, exclusive: bool = False) -> None:
        """Make sure the site key in use is the one the database records, inside the caller's
        transaction: another process may have rotated it (`faceapp db rotate-key`) since this
        one started. The key is then read again from the key file (and its rotation leftovers),
        which the rotation made hold the new key; when it does not, StoreError: data wrapped
        with a key the database no longer records could never be read again, and a gallery
        whose keys do not open would drop everyone from it silently.

        ``writing``: the record is locked shared to the end of the transaction on PostgreSQL,
        so a rotation (which locks it exclusively, ``exclusive``, before it reads the people)
        cannot commit between this check and the caller's commit."""
        stmt = select(MetaRow.value).where(MetaRow.key == SITE_KEY_ID_KEY)
        if writing:
            stmt = stmt.with_for_update(read=not exclusive)
        stored = s.scalar(stmt)
        if stored is None:
            raise StoreError(f"database {self.url} has lost the record of its site key (meta {SITE_KEY_ID_KEY!r}): "
                             "it was altered; restore it from a backup")
        if stored == self._site_key.key_id:
            return
        held = self._site_key.key_id
        what = "nothing was written" if writing else "its faces cannot be read"
        if self._key_path is None:
            raise StoreError(f"the site key was rotated: database {self.url} now records key {stored}, but this "
                             f"process was given key {held}; {what}: restart it with the new key")
        try:
            key = crypto.find_key(stored, self._key_path)
            chain_key = key.unwrap(base64.b64decode(_meta(s, _CHAIN_KEY_KEY)[_CHAIN_KEY_KEY]), aad=_CHAIN_AAD)
        except (StoreError, KeyError) as exc:
            raise StoreError(
                f"the site key was rotated: database {self.url} now records key {stored}, but this process "
                f"holds key {held} and its key file {str(self._key_path)!r} does not hold the new one ({exc}); "
                f"{what}: copy the new key file there and restart faceapp"
            ) from None
        if not hmac.compare_digest(chain_key, self._chain_key):
            raise StoreError(f"database {self.url}: its event-chain key changed with the site key; it was altered")
        self._site_key = key
        log.warning("the site key of %s was rotated by another process: now using key %s from %s",
                    self.url, stored, self._key_path)

    def _person_key(self, person: PersonRow) -> bytes:
        return self._unwrap(person.id, person.name_key, person.data_key, {})

    def _unwrap(self, person_id: int, key: str, wrapped: bytes | None, cache: dict[int, bytes]) -> bytes:
        """Person ``person_id``'s data key, which opens only under their name key ``key``: a row
        renamed, or copied in, around the store is refused (StoreError naming the person)."""
        dek = cache.get(person_id)
        if dek is None:
            if wrapped is None:
                raise StoreError(f"person {person_id} has no data key (the database was altered)")
            try:
                dek = self._site_key.unwrap(bytes(wrapped), aad=_dek_aad(person_id, key))
            except crypto.DecryptionError:
                raise StoreError(f"the data key of person {person_id} does not open under their name key {key!r} "
                                 "(their row was renamed or copied in around faceapp: the database was altered)"
                                 ) from None
            cache[person_id] = dek
        return dek

    def _open_embedding(self, template_id: int, person_id: int, key: str, blob: bytes, dim: int, sealed: bool,
                        wrapped: bytes | None, cache: dict[int, bytes]) -> np.ndarray:
        if not sealed:
            raise StoreError("it is not sealed (written around the application)")
        raw = crypto.unseal(self._unwrap(person_id, key, wrapped, cache), bytes(blob), aad=_aad(person_id, "embedding"))
        if len(raw) != 4 * dim:
            raise StoreError(f"it holds {len(raw)} bytes for {dim} values")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    def _open_template(self, t: TemplateRow, p: PersonRow, cache: dict[int, bytes]) -> tuple[np.ndarray, bytes]:
        try:
            emb = self._open_embedding(t.id, t.person_id, p.name_key, t.embedding, t.dim, t.sealed, p.data_key, cache)
            face = crypto.unseal(self._unwrap(t.person_id, p.name_key, p.data_key, cache), bytes(t.face_jpeg),
                                 aad=_aad(t.person_id, "face"))
        except StoreError as exc:
            raise StoreError(f"template {t.id} of {p.name!r} cannot be read: {exc}") from exc
        return emb, face

    # -- validation ------------------------------------------------------------------------

    def _embedding_bytes(self, embedding: np.ndarray, model_id: str) -> tuple[bytes, int]:
        blob, dim = _embedding_bytes(embedding)
        if self._models is not None and model_id in self._models:
            expected = self._models[model_id].embedding_dim
            if dim != expected:
                raise ValueError(f"model {model_id!r} makes embeddings of {expected} values, got {dim}")
        return blob, dim

    def _template_values(self, embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes) -> dict[str, Any]:
        _check_model_id(model_id)
        blob, dim = self._embedding_bytes(embedding, model_id)
        quality = float(quality)
        if not math.isfinite(quality):
            raise ValueError(f"quality must be a finite number, got {quality}")
        if not isinstance(face_jpeg, (bytes, bytearray, memoryview)):
            raise TypeError(f"face_jpeg must be bytes, got {type(face_jpeg).__name__}")
        return {"embedding": blob, "dim": dim, "model_id": model_id, "quality": quality, "face_jpeg": bytes(face_jpeg),
                "embedding_array": np.frombuffer(blob, dtype="<f4").astype(np.float32)}
    # -- state -----------------------------------------------------------------------------

    def watch(self, on_change) -> notify.GalleryWatcher | None:
        """Call ``on_change(generation)`` from a thread of its own whenever any process changes
        people or templates (PostgreSQL LISTEN/NOTIFY); None on databases without it, where
        :meth:`generation` is the way to notice a change. Close the watcher when done."""
        if self._engine.dialect.name != "postgresql":
            return None
        return notify.GalleryWatcher(self._engine.url, on_change)

    def generation(self) -> tuple[int, int, int, int, int]:
        """A cheap value that changes whenever people or templates change, in this or any
        other process: compare it with the one an in-memory gallery was built at."""
        with self._reading() as s:
            return _generation(s)

    def sealed_snapshot(self) -> SealedSnapshot:
        """Every person and template exactly as stored (sealed), with the generation they are
        at, read in one transaction: what a door copies to decide from while offline."""
        with self._reading(snapshot=True) as s:
            self._check_site_key(s)
            self._check_gallery(s)
            return SealedSnapshot(
                site_key_id=_meta(s, SITE_KEY_ID_KEY)[SITE_KEY_ID_KEY],
                generation=_generation(s),
                people=[dict(r._mapping) for r in s.execute(select(_PEOPLE).order_by(_PEOPLE.c.id))],
                templates=[dict(r._mapping) for r in s.execute(select(_TEMPLATES).order_by(_TEMPLATES.c.id))],
            )

    def replace_with_snapshot(self, snapshot: SealedSnapshot) -> int:
        """Make this database's people and templates those of ``snapshot`` (one transaction;
        the event log is not touched). For a door's local copy only; the snapshot must be
        sealed with this store's site key. Returns the number of templates."""
        if snapshot.site_key_id != self._site_key.key_id:
            raise StoreError(f"the snapshot is sealed with site key {snapshot.site_key_id}, this copy with "
                             f"{self._site_key.key_id}; give the door the server's key file")
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            if snapshot.site_key_id != self._site_key.key_id:
                raise StoreError(f"the snapshot is sealed with site key {snapshot.site_key_id}, this copy with "
                                 f"{self._site_key.key_id}; give the door the server's key file")
            s.execute(delete(_TEMPLATES))
            s.execute(delete(_PEOPLE))
            if snapshot.people:
                s.execute(insert(_PEOPLE), snapshot.people)
            if snapshot.templates:
                s.execute(insert(_TEMPLATES), snapshot.templates)
            # the copy's own record (under its own chain key), of what the server's record vouched for
            self._write_gallery_record(s, self._lock_gallery(s) or MetaRow(key=GALLERY_HEAD_KEY, value=""))
            _bump_generation(s)
        self._checkpoint()
        return len(snapshot.templates)

    def info(self) -> dict[str, Any]:
        """A summary for ``faceapp db info``: url (password hidden), schema revision and head,
        counts of people, templates and events, and templates per model."""
        stmt = select(
            select(func.count(PersonRow.id)).scalar_subquery(),
            select(func.count(TemplateRow.id)).scalar_subquery(),
            select(func.count(EventRow.id)).scalar_subquery(),
        )
        with self._reading() as s:
            people, templates, events = s.execute(stmt).one()
        return {
            "url": self.url,
            "revision": current_revision(self._engine),
            "head": head_revision(),
            "people": people,
            "templates": templates,
            "events": events,
            "models": self.model_ids(),
        }

    # -- export / import -------------------------------------------------------------------

    def gallery_signer(self, site_key: crypto.SiteKey | None = None) -> archive.Signer:
        """The gallery-signing key of this site (derived from its site key), or of the site
        whose key is ``site_key`` (to exchange galleries between sites)."""
        key = site_key or self._site_key
        return archive.Signer(key.derive(b"faceapp/gallery-signing"), key.key_id)

    def export_gallery(self, path: str | os.PathLike[str], *, signer: archive.Signer | None = None) -> ExportResult:
        """Write everyone enrolled and all their templates (embeddings, model ids, face
        images) to one .zip file at ``path``, signed with ``signer`` (default: this site's
        key). The event log is not exported; the export itself is an event. People with no
        templates (older databases hold some) are left out, with a warning and a note in the
        event: an import refuses to enroll anyone with nothing to be recognised by."""
        with self._reading(snapshot=True) as s:
            self._check_site_key(s)
            self._check_gallery(s)
            people = s.scalars(select(PersonRow).order_by(PersonRow.id)).all()
            by_id = {p.id: p for p in people}
            keys: dict[int, bytes] = {}
            templates = []
            for t in s.scalars(select(TemplateRow).order_by(TemplateRow.id)).all():
                emb, face = self._open_template(t, by_id[t.person_id], keys)
                templates.append(
                    archive.ArchivedTemplate(person=by_id[t.person_id].name, embedding=emb, model_id=t.model_id,
                                             quality=t.quality, created_at=t.created_at, face_jpeg=face)
                )
            with_templates = {t.person for t in templates}
            left_out = tuple(p.name for p in people if p.name not in with_templates)
            data = archive.Archive(people=[archive.ArchivedPerson(p.name, p.created_at) for p in people
                                           if p.name in with_templates],
                                   templates=templates)
        archive.write_archive(path, data, signer=signer or self.gallery_signer())
        note = ""
        if left_out:
            listed = _some_names(left_out)
            log.warning("gallery export %s: left out %s, enrolled with no templates (nothing to recognise "
                        "them by; enroll them again)", Path(path).name, listed)
            note = f"; left out {len(left_out)} {'person' if len(left_out) == 1 else 'people'} with no templates: {listed}"
        self.log_event("export", detail=f"gallery exported to {Path(path).name!r}: {len(data.people)} people, "
                       f"{len(data.templates)} template(s){note}")
        return ExportResult(Path(path), len(data.people), len(data.templates), left_out)

    def import_gallery(
        self,
        path: str | os.PathLike[str],
        *,
        on_conflict: OnConflict = "skip",
        signer: archive.Signer | None = None,
        allow_unsigned: bool = False,
    ) -> ImportResult:
        """Add the people and templates of an export made by :meth:`export_gallery`, in one
        transaction with one event naming the archive and the counts. For a name that is
        already enrolled, ``on_conflict`` says what to do: ``"skip"`` keeps ours,
        ``"replace"`` replaces our templates with the file's, ``"error"`` raises
        DuplicatePerson and imports nothing.

        Nothing in the file is trusted: its signature must verify with ``signer`` (default:
        this site's key) unless ``allow_unsigned``, and every template must be of a known
        model (the store's ``models``), of that model's size, finite, of unit length, with a
        face that decodes as a JPEG of the model's chip size or as the marked wide crop
        (:mod:`faceapp.stored_face`); one bad template refuses the whole file. All of it is
        checked, and sealed, before the write lock is taken, so doors wait only for the inserts."""
        if on_conflict not in _ON_CONFLICT:
            raise ValueError(f"on_conflict must be one of {', '.join(_ON_CONFLICT)}; got {on_conflict!r}")
        if self._models is None:
            raise StoreError("importing a gallery needs the list of known models (open the store through faceapp's services)")
        if signer is None:  # this site's signing key follows a rotation made by another process
            with self._reading() as s:
                self._check_site_key(s)
        data = archive.read_archive(path, signer=signer or self.gallery_signer(), allow_unsigned=allow_unsigned)
        shown = Path(path).name
        people: dict[str, str] = {}  # name_key -> normalised name
        for p in data.people:
            name = normalize_name(p.name)
            if name_key(name) in people:
                raise StoreError(f"gallery export {shown!r} names {name!r} twice (names are compared ignoring case)")
            people[name_key(name)] = name
        by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i, t in enumerate(data.templates):
            try:
                values = self._import_values(t)
            except (ValueError, TypeError, StoreError) as exc:
                raise StoreError(f"gallery export {shown!r} refused: template {i} ({t.person!r}): {exc}; "
                                 "nothing was imported") from None
            by_person[name_key(normalize_name(t.person))].append(values)
        empty = [name for key, name in people.items() if not by_person.get(key)]
        if empty and on_conflict == "replace":  # an enrolled person's templates would be erased
            raise StoreError(f"gallery export {shown!r} lists {_some_names(empty)} with no templates; "
                             "nothing was imported (import without --on-conflict replace to leave them out)")
        if empty:  # older exports list such people: nobody is enrolled with nothing to be recognised by
            log.warning("gallery export %s lists %s with no templates: left out", shown, _some_names(empty))
            people = {key: name for key, name in people.items() if by_person.get(key)}
        sealed_people = []
        for key, name in people.items():
            dek = crypto.new_data_key()
            sealed_people.append((key, name, dek, by_person.get(key, [])))
        added = replaced = skipped = written = 0
        created = {normalize_name(p.name): p.created_at for p in data.people}
        with self._writing() as s:
            self._check_site_key(s, writing=True)
            record = self._gallery_write(s)
            now = utcnow()
            existing: dict[str, PersonRow] = {}
            wanted = [key for key, _, _, _ in sealed_people]
            for i in range(0, len(wanted), 500):
                for row in s.scalars(select(PersonRow).where(PersonRow.name_key.in_(wanted[i:i + 500]))):
                    existing[row.name_key] = row
            targets: list[tuple[PersonRow, bytes, list[dict[str, Any]]]] = []
            fresh: list[tuple[PersonRow, bytes, list[dict[str, Any]]]] = []
            for key, name, dek, items in sealed_people:
                person = existing.get(key)
                if person is None:
                    person = PersonRow(name=name, name_key=key, created_at=created.get(name, now), updated_at=now)
                    fresh.append((person, dek, items))
                    continue
                if on_conflict == "error":
                    raise DuplicatePerson(
                        f"{person.name!r} is already enrolled, so nothing was imported; "
                        "import again skipping or replacing the people already enrolled"
                    )
                if on_conflict == "skip":
                    skipped += 1
                    continue
                s.execute(
                    delete(TemplateRow).where(TemplateRow.person_id == person.id),
                    execution_options={"synchronize_session": False},
                )
                person.updated_at = now
                targets.append((person, self._person_key(person), items))
                replaced += 1
            s.flush()  # the replaced people's changes
            ids: dict[str, int] = {}
            if fresh:  # Core executemany inserts: no ORM bookkeeping while doors wait for the lock
                for i in range(0, len(fresh), 1000):
                    chunk = fresh[i:i + 1000]
                    result = s.execute(
                        insert(_PEOPLE).returning(_PEOPLE.c.id, _PEOPLE.c.name_key, sort_by_parameter_order=True),
                        [{"name": p.name, "name_key": p.name_key, "created_at": p.created_at, "updated_at": now}
                         for p, _, _ in chunk],
                    )
                    ids.update({key: pid for pid, key in result.all()})
                s.execute(
                    update(_PEOPLE).where(_PEOPLE.c.id == bindparam("pid")).values(data_key=bindparam("wrapped")),
                    [{"pid": ids[p.name_key],
                      "wrapped": self._site_key.wrap(dek, aad=_dek_aad(ids[p.name_key], p.name_key))}
                     for p, dek, _ in fresh],
                )
            added = len(fresh)
            rows = [dict(person_id=pid, **_sealed(dek, pid, values))
                    for pid, dek, items in [(p.id, d, it) for p, d, it in targets]
                    + [(ids[p.name_key], d, it) for p, d, it in fresh]
                    for values in items]
            for i in range(0, len(rows), 1000):
                s.execute(insert(_TEMPLATES), rows[i:i + 1000])
            written = len(rows)
            _check_dims(s)
            signed = f"signed by key {data.signed_by}" if data.signed_by else "UNSIGNED (imported with --allow-unsigned)"
            self._append_event(
                s, EventRow(time=utcnow(), kind="import",
                            detail=f"gallery {shown!r} imported, {signed}: {added} added, {replaced} replaced, "
                            f"{skipped} skipped, {written} template(s)"
                            + (f", {len(empty)} with no templates left out" if empty else ""))
            )
            if added or replaced:
                self._write_gallery_record(s, record)
                _bump_generation(s)
        return ImportResult(added=added, replaced=replaced, skipped=skipped, templates=written, left_out=len(empty))

    def _import_values(self, t: archive.ArchivedTemplate) -> dict[str, Any]:
        assert self._models is not None
        facts = self._models.get(t.model_id)
        if facts is None:
            known = ", ".join(sorted(self._models)) or "none"
            raise StoreError(f"model {t.model_id!r} is not installed here (known: {known})")
        values = self._template_values(t.embedding, t.model_id, t.quality, t.face_jpeg)
        _check_face_jpeg(t.face_jpeg, facts.input_size)
        values["created_at"] = t.created_at
        return values

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _reading(self, *, snapshot: bool = False) -> Iterator[Session]:
        """One read transaction; with ``snapshot`` every statement sees the same committed state
        (REPEATABLE READ on PostgreSQL), as a read of several statements that must agree needs."""
        self._check_open()
        try:
            with (self._snapshot_reader if snapshot else self._reader)() as s, s.begin():
                yield s
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read database {self.url}: {describe_error(exc)}") from exc

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        self._check_open()
        try:
            with self._writer() as s, s.begin():
                yield s
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to database {self.url}: {describe_error(exc)}") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    def _checkpoint(self) -> None:
        """Best effort: copy the write-ahead log into the database and truncate it."""
        if self._engine.dialect.name != "sqlite":
            return
        try:
            with self._engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    cursor.close()
        except Exception as exc:  # another process reading; the log is checkpointed later
            log.debug("WAL checkpoint skipped: %s", exc)


# -- helpers ------------------------------------------------------------------------------

_CHAIN_KEY_KEY = "event_chain_key"  # meta key: the event chain's HMAC key, wrapped by the site key
_CHAIN_AAD = b"faceapp/event-chain-key/v3"  # its wrapping since schema 0005 (the database keeps a v2 gallery record)
_V1_CHAIN_AAD = b"faceapp/event-chain-key/v2"  # ...at schema 0004 (a v1 record)
_LEGACY_CHAIN_AAD = b"faceapp/event-chain-key"  # ...and before (no record)
_RECORD_FORMAT = "v2"  # the gallery record's format: v1 (schema 0004) had no created_at
_SEAL_KIND = "seal-gallery"  # the event of a database's gallery being recorded (once, from schema 0003)
_SEAL_V2_KIND = "seal-gallery-v2"  # ...of its v1 record being rewritten as v2 (once, from schema 0004)
_REMOVE_KIND = "remove"  # a person's removal (person_id: theirs), and a photo's (detail: _PHOTO_REMOVAL)
_PHOTO_REMOVAL = "removed one photo of %"  # how remove_template's event detail starts (since it exists)
_STORE_KINDS = frozenset({_REMOVE_KIND, _SEAL_KIND, _SEAL_V2_KIND})  # never logged through log_event
_PEOPLE = PersonRow.__table__
_TEMPLATES = TemplateRow.__table__
_EVENTS = EventRow.__table__
_INIT_LOCK_KEY = 0x66616365_6B657973  # PostgreSQL advisory lock: one process seals a new database
_ENROLL_LOCK_KEY = 0x66616365_656E726C  # PostgreSQL advisory lock: one enrollment's check-and-write at a time


def _generation(s: Session) -> tuple[int, int, int, int, int]:
    counter, people, max_person, templates, max_template = s.execute(select(
        select(MetaRow.value).where(MetaRow.key == GENERATION_KEY).scalar_subquery(),
        select(func.count(PersonRow.id)).scalar_subquery(),
        select(func.max(PersonRow.id)).scalar_subquery(),
        select(func.count(TemplateRow.id)).scalar_subquery(),
        select(func.max(TemplateRow.id)).scalar_subquery(),
    )).one()
    return (int(counter or 0), people, max_person or 0, templates, max_template or 0)


def _meta(s: Session, *keys: str) -> dict[str, str]:
    return {k: v for k, v in s.execute(select(MetaRow.key, MetaRow.value).where(MetaRow.key.in_(keys))).all()}


def _dek_aad(person_id: int, key: str) -> bytes:
    """A data key's place: its person's id and name key (since schema 0004), so that the row
    renamed, or another row given it, no longer opens it."""
    return f"faceapp/person/{person_id}/data-key/v2\x00".encode() + key.encode("utf-8")


def _legacy_dek_aad(person_id: int) -> bytes:
    """A data key's place before schema 0004 (the id only), read once by Store._bind_gallery."""
    return f"faceapp/person/{person_id}/data-key".encode()


def _roster(s: Session, fmt: str = _RECORD_FORMAT) -> tuple[int, int, bytes]:
    """The gallery's membership: how many people and templates, and one SHA-256 over every
    person's (id, name key, name, and since v2 created_at as stored) and every template's (id,
    person id), in id order as the database returns them. One pass over two narrow column
    sets, no crypto per row (read whole: streaming them in batches took twice as long).
    created_at is covered because it decides whether a removal in the log is the live
    person's (:func:`_rolled_back_problem`); v1 (schema 0004) is read once, to rewrite it."""
    cols = [_PEOPLE.c.id, _PEOPLE.c.name_key, _PEOPLE.c.name]
    if fmt != "v1":
        cols.append(_stored_time(s, _PEOPLE.c.created_at))
    people = [tuple(r) for r in s.execute(select(*cols).order_by(_PEOPLE.c.id))]
    templates = [tuple(r) for r in s.execute(select(_TEMPLATES.c.id, _TEMPLATES.c.person_id)
                                             .order_by(_TEMPLATES.c.id))]
    h = hashlib.sha256(f"faceapp/gallery/{fmt}\x00".encode())
    h.update(json.dumps(people, separators=(",", ":")).encode("ascii"))  # unambiguous, whatever a name holds
    h.update(b"\x00")
    h.update(np.asarray(templates, dtype="<i8").tobytes())
    return len(people), len(templates), h.digest()


def _stored_time(s: Session, column: Any) -> Any:
    """A time column as text, exactly as stored and the same in every session: SQLite's own
    text (no parsing per row); on PostgreSQL the instant in UTC to the microsecond (whatever
    the session's time zone)."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI:SS.US")
    return type_coerce(column, Text)


def _rolled_back_problem(s: Session) -> str | None:
    """None unless a live person's removal is in the log, dated after their creation: then the
    gallery was put back from an older copy (people, templates and its record together), and
    this says who. Ids are never reused since schema 0003; before, a removed person's id could
    be given to the next enrollee, whose creation then comes after that removal. One query
    along the index on events (kind, person_id), over the log's removals only."""
    ids = s.scalars(
        select(_PEOPLE.c.id).select_from(_EVENTS.join(_PEOPLE, _PEOPLE.c.id == _EVENTS.c.person_id))
        .where(_EVENTS.c.kind == _REMOVE_KIND, _EVENTS.c.time > _PEOPLE.c.created_at,
               _EVENTS.c.detail.not_like(_PHOTO_REMOVAL))
        .distinct().order_by(_PEOPLE.c.id).limit(6)
    ).all()
    if not ids:
        return None
    who = ", ".join(f"person {i}" for i in ids[:5]) + (" and more" if len(ids) > 5 else "")
    return (f"the gallery holds {who}, whom the log records as removed after being created: its people, "
            "templates and gallery record were put back from an older copy, re-admitting people removed since")


def _aad(person_id: int, field: str) -> bytes:
    return f"faceapp/person/{person_id}/{field}".encode()


def _sealed(dek: bytes, person_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """TemplateRow columns for prepared template ``values``, embedding and face sealed."""
    out = {k: values[k] for k in ("dim", "model_id", "quality", "created_at") if k in values}
    out["embedding"] = crypto.seal(dek, values["embedding"], aad=_aad(person_id, "embedding"))
    out["face_jpeg"] = crypto.seal(dek, values["face_jpeg"], aad=_aad(person_id, "face"))
    out["sealed"] = True
    return out


def _event_content(row: EventRow) -> bytes:
    return eventlog.canonical(
        time=row.time, kind=row.kind, decision=row.decision, claimed=row.claimed, decided=row.decided,
        person_id=row.person_id, distance=row.distance, threshold=row.threshold, detail=row.detail,
        uid=row.uid,
    )


def _event_name(name: str | None) -> str | None:
    """A name as logged: whatever was typed or decided, on one line, at most NAME_LENGTH
    characters (the same on every database: PostgreSQL refuses NUL and longer text)."""
    name = " ".join((name or "").replace("\x00", " ").split())
    return name[:NAME_LENGTH] or None


def _check_model_id(model_id: str) -> None:
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValueError(f"model_id must be a non-empty str, got {model_id!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in model_id):
        raise ValueError(f"model_id cannot contain control characters: {model_id!r}")
    if len(model_id) > MODEL_ID_LENGTH:
        raise ValueError(f"model_id can have at most {MODEL_ID_LENGTH} characters")


def _check_unit(arr: np.ndarray) -> None:
    norm = float(np.linalg.norm(arr.astype(np.float64)))
    if not abs(norm - 1.0) <= UNIT_TOLERANCE:
        raise ValueError(f"an embedding must have unit length (every model makes unit vectors), got length {norm:.6g}")


def _embedding_bytes(embedding: np.ndarray) -> tuple[bytes, int]:
    """float32 little-endian bytes of a 1-D, finite, unit-length embedding, and its length."""
    arr = np.asarray(embedding)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"an embedding must be a non-empty 1-D vector, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"an embedding must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype("<f4")
    if not np.all(np.isfinite(arr)):
        raise ValueError("an embedding must be finite (it holds NaN or inf)")
    _check_unit(arr)
    return arr.tobytes(), int(arr.size)


def _check_face_jpeg(data: bytes, size: int) -> None:
    """Refuse a face that is neither the model's chip, a JPEG of ``size`` x ``size`` pixels (what
    templates enrolled before 4 December 2026 keep), nor the marked wide crop enrollment keeps
    since (:mod:`faceapp.stored_face`); the header is read before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    from faceapp.stored_face import is_wide_image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                raise ValueError(f"its face is a {img.format or 'unknown'} file, not a JPEG")
            if img.size != (size, size) and not is_wide_image(img):
                raise ValueError(f"its face is {img.size[0]}x{img.size[1]} pixels, not the model's {size}x{size}")
            img.load()
    except Image.DecompressionBombError:  # its header claims more pixels than PIL will decode
        raise ValueError(f"its face is not the model's {size}x{size} pixels (its header claims an image far "
                         "too large to decode)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"its face does not decode as a JPEG ({exc})") from None


def _find_person(s: Session, name: str) -> PersonRow | None:
    return s.scalar(select(PersonRow).where(PersonRow.name_key == name_key(name)))


def _find_person_lenient(s: Session, name: str) -> PersonRow | None:
    """The person a logged name refers to, or None (also for a name that could never be enrolled)."""
    try:
        return _find_person(s, name)
    except StoreError:
        return None


def _require_person(s: Session, name: str) -> PersonRow:
    person = _find_person(s, name)
    if person is None:
        raise UnknownPerson(f"{name!r} is not enrolled; `faceapp people` lists who is")
    return person


def _duplicate(name: str) -> DuplicatePerson:
    return DuplicatePerson(f"{name!r} is already enrolled; choose another name or re-enroll them")


def _changed_meanwhile(t: Template) -> StoreError:
    return StoreError(
        f"the gallery changed during the re-embed: template {t.id} of {t.person_name!r} was removed, "
        "re-enrolled or re-embedded meanwhile; nothing was re-embedded, so run `faceapp db reembed` again"
    )


def _template_count(s: Session, person_id: int) -> int:
    return s.scalar(select(func.count(TemplateRow.id)).where(TemplateRow.person_id == person_id)) or 0


def _model_mismatch(model_id: str, others: dict[str, int]) -> ModelMismatch:
    total = sum(others.values())
    if len(others) == 1:
        by = f"model {next(iter(others))!r}"
    else:
        by = "models " + ", ".join(f"{m!r} ({n})" for m, n in others.items())
    return ModelMismatch(
        f"{total} stored template{'s were' if total != 1 else ' was'} made by {by}, not by "
        f"{model_id!r}; re-embed them with `faceapp db reembed` or enroll again"
    )


def _check_dims(s: Session) -> None:
    """Refuse a write that would give one model's embeddings different sizes."""
    bad = s.scalar(
        select(TemplateRow.model_id)
        .group_by(TemplateRow.model_id)
        .having(func.count(distinct(TemplateRow.dim)) > 1)
        .limit(1)
    )
    if bad is not None:
        dims = sorted(s.scalars(select(TemplateRow.dim).where(TemplateRow.model_id == bad).distinct()))
        raise ModelMismatch(
            f"model {bad!r} would have embeddings of sizes {dims}; one model makes one size, "
            "so nothing was saved"
        )


def _bump_generation(s: Session) -> None:
    res = s.execute(
        update(MetaRow)
        .where(MetaRow.key == GENERATION_KEY)
        .values(value=cast(cast(MetaRow.value, Integer) + 1, Text)),
        execution_options={"synchronize_session": False},
    )
    if res.rowcount == 0:  # type: ignore[attr-defined]
        s.add(MetaRow(key=GENERATION_KEY, value="1"))
    if s.get_bind().dialect.name == "postgresql":  # every door LISTENing hears of it at commit
        s.execute(text("SELECT pg_notify(:channel, (SELECT value FROM meta WHERE key = :key))"),
                  {"channel": notify.CHANNEL, "key": GENERATION_KEY})


def _to_person(row: PersonRow, *, template_count: int) -> Person:
    return Person(id=row.id, name=row.name, created_at=row.created_at, template_count=template_count)


def _to_template(row: TemplateRow, person_name: str, embedding: np.ndarray, face_jpeg: bytes) -> Template:
    return Template(
        id=row.id,
        person_id=row.person_id,
        person_name=person_name,
        embedding=embedding,
        model_id=row.model_id,
        quality=row.quality,
        created_at=row.created_at,
        face_jpeg=face_jpeg,
    )


def _to_event(row: EventRow) -> Event:
    return Event(
        id=row.id,
        time=row.time,
        kind=row.kind,
        decision=Decision(row.decision) if row.decision is not None else None,
        claimed=row.claimed,
        decided=row.decided,
        distance=row.distance,
        threshold=row.threshold,
        detail=row.detail,
    )
