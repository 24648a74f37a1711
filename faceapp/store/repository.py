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

import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from sqlalchemy import Integer, Text, cast, delete, distinct, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from faceapp.errors import DuplicatePerson, ModelMismatch, StoreError, UnknownPerson
from faceapp.store import archive
from faceapp.store.db import describe_error, make_engine, mask_url, writer
from faceapp.store.migrate import current_revision, head_revision, upgrade_to_head
from faceapp.store.models import (
    GENERATION_KEY,
    MODEL_ID_LENGTH,
    NAME_LENGTH,
    EventRow,
    MetaRow,
    PersonRow,
    TemplateRow,
    as_utc,
    utcnow,
)
from faceapp.types import Decision, Event, Person, Template

log = logging.getLogger(__name__)

OnConflict = Literal["skip", "replace", "error"]
_ON_CONFLICT = ("skip", "replace", "error")


class Gallery(NamedTuple):
    """Every template of one model, one row each: unpacks as ``names, person_ids, embeddings``.

    ``names[i]`` and ``person_ids[i]`` (int64) own row ``embeddings[i]`` of the (N, dim)
    float32 matrix. A person with several templates has several rows. With no templates the
    matrix is (0, 0)."""

    names: list[str]
    person_ids: np.ndarray
    embeddings: np.ndarray


@dataclass(frozen=True)
class ExportResult:
    path: Path
    people: int
    templates: int


@dataclass(frozen=True)
class ImportResult:
    added: int  # people new to this database
    replaced: int  # people already enrolled whose templates were replaced (on_conflict="replace")
    skipped: int  # people already enrolled and left as they were (on_conflict="skip")
    templates: int  # templates written


class Store:
    """The enrollment database at ``url`` (e.g. ``sqlite:///C:/Users/me/faceapp/faceapp.db``).

    Opening it creates the database if needed and upgrades its schema to the newest
    revision. Pass ``engine`` instead to use an engine made elsewhere (it is not disposed by
    :meth:`close`)."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
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
        try:
            upgrade_to_head(engine)
        except BaseException:
            if self._owns_engine:
                engine.dispose()
            raise
        self._reader = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(writer(engine), expire_on_commit=False)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self._engine

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
        self, name: str, *, embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes
    ) -> Person:
        """Enroll a new person with their first template. DuplicatePerson if the name is taken."""
        name = _clean_name(name)
        values = _template_values(embedding, model_id, quality, face_jpeg)
        with self._writing() as s:
            if _find_person(s, name) is not None:
                raise _duplicate(name)
            now = utcnow()
            person = PersonRow(name=name, created_at=now, updated_at=now)
            person.templates.append(TemplateRow(created_at=now, **values))
            s.add(person)
            try:
                s.flush()
            except IntegrityError as exc:  # someone else enrolled the name meanwhile
                raise _duplicate(name) from exc
            _check_dims(s)
            _bump_generation(s)
            return _to_person(person, template_count=1)

    def has_person(self, name: str) -> bool:
        name = name.strip()
        if not name:
            return False
        with self._reading() as s:
            return _find_person(s, name) is not None

    def get_person(self, name: str) -> Person:
        """The enrolled person called ``name`` (exact match). UnknownPerson if nobody is."""
        name = _clean_name(name)
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
        needle = (search or "").strip().casefold()
        if needle:
            people = [p for p in people if needle in p.name.casefold()]
        return sorted(people, key=lambda p: (p.name.casefold(), p.name))

    def rename_person(self, old: str, new: str) -> Person:
        """Rename a person; their templates and logged events follow the new name."""
        old, new = _clean_name(old), _clean_name(new)
        with self._writing() as s:
            person = _require_person(s, old)
            if new != old:
                if _find_person(s, new) is not None:
                    raise _duplicate(new)
                person.name = new
                person.updated_at = utcnow()
                for column in (EventRow.claimed, EventRow.decided):
                    s.execute(
                        update(EventRow).where(column == old).values({column.key: new}),
                        execution_options={"synchronize_session": False},
                    )
                try:
                    s.flush()
                except IntegrityError as exc:
                    raise _duplicate(new) from exc
                _bump_generation(s)
            return _to_person(person, template_count=_template_count(s, person.id))

    def remove_person(self, name: str) -> int:
        """Remove a person and all of their data: templates (with their face images) and
        every event that names them. Returns the number of templates removed.

        On SQLite the freed pages are overwritten (``secure_delete``) and the write-ahead
        log is checkpointed, so the face data does not linger in the file."""
        name = _clean_name(name)
        with self._writing() as s:
            person = _require_person(s, name)
            removed = _template_count(s, person.id)
            nosync = {"synchronize_session": False}
            s.execute(
                delete(EventRow).where(
                    or_(
                        EventRow.person_id == person.id,
                        EventRow.claimed == person.name,
                        EventRow.decided == person.name,
                    )
                ),
                execution_options=nosync,
            )
            s.execute(delete(TemplateRow).where(TemplateRow.person_id == person.id), execution_options=nosync)
            s.execute(delete(PersonRow).where(PersonRow.id == person.id), execution_options=nosync)
            _bump_generation(s)
        self._checkpoint()
        log.info("removed %r and %d templates", name, removed)
        return removed

    # -- templates -------------------------------------------------------------------------

    def add_template(
        self, name: str, *, embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes
    ) -> Template:
        """Add one more template to an enrolled person. UnknownPerson if they are not."""
        return self._write_template(name, _template_values(embedding, model_id, quality, face_jpeg), replace=False)

    def replace_templates(
        self, name: str, *, embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes
    ) -> Template:
        """Re-enroll: remove all of the person's templates and store this one instead."""
        return self._write_template(name, _template_values(embedding, model_id, quality, face_jpeg), replace=True)

    def _write_template(self, name: str, values: dict[str, Any], *, replace: bool) -> Template:
        name = _clean_name(name)
        with self._writing() as s:
            person = _require_person(s, name)
            now = utcnow()
            if replace:
                s.execute(
                    delete(TemplateRow).where(TemplateRow.person_id == person.id),
                    execution_options={"synchronize_session": False},
                )
                person.updated_at = now
            row = TemplateRow(person_id=person.id, created_at=now, **values)
            s.add(row)
            s.flush()
            _check_dims(s)
            _bump_generation(s)
            return _to_template(row, person.name)

    def templates(self, model_id: str | None = None, person: str | None = None) -> list[Template]:
        """Stored templates (with their face images), oldest first, optionally of one model
        and/or one person (UnknownPerson if that person is not enrolled)."""
        stmt = select(TemplateRow, PersonRow.name).join(PersonRow).order_by(TemplateRow.id)
        if model_id is not None:
            stmt = stmt.where(TemplateRow.model_id == model_id)
        with self._reading() as s:
            if person is not None:
                row = _require_person(s, _clean_name(person))
                stmt = stmt.where(TemplateRow.person_id == row.id)
            return [_to_template(t, name) for t, name in s.execute(stmt).all()]

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
        such templates are left out."""
        with self._reading() as s:
            if strict:
                others = s.execute(
                    select(TemplateRow.model_id, func.count(TemplateRow.id))
                    .where(TemplateRow.model_id != model_id)
                    .group_by(TemplateRow.model_id)
                    .order_by(TemplateRow.model_id)
                ).all()
                if others:
                    raise _model_mismatch(model_id, {m: n for m, n in others})
            rows = s.execute(
                select(TemplateRow.person_id, PersonRow.name, TemplateRow.embedding, TemplateRow.dim)
                .join(PersonRow)
                .where(TemplateRow.model_id == model_id)
                .order_by(TemplateRow.id)
            ).all()
        if not rows:
            return Gallery([], np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
        dims = {r.dim for r in rows}
        if len(dims) != 1:
            raise StoreError(
                f"templates of model {model_id!r} have different sizes {sorted(dims)}; "
                "re-embed them with `faceapp db reembed`"
            )
        matrix = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4")
        matrix = matrix.astype(np.float32).reshape(len(rows), dims.pop())
        ids = np.fromiter((r.person_id for r in rows), dtype=np.int64, count=len(rows))
        return Gallery([r.name for r in rows], ids, matrix)

    def face_jpeg(self, template_id: int) -> bytes:
        """The aligned face image (JPEG bytes) a template was made from."""
        with self._reading() as s:
            data = s.scalar(select(TemplateRow.face_jpeg).where(TemplateRow.id == template_id))
        if data is None:
            raise StoreError(f"there is no template with id {template_id}")
        return data

    def update_embedding(self, template_id: int, embedding: np.ndarray, model_id: str) -> Template:
        """Replace one template's embedding (e.g. re-embedded from its stored face)."""
        self.update_embeddings([(template_id, embedding)], model_id)
        with self._reading() as s:
            row, name = s.execute(
                select(TemplateRow, PersonRow.name).join(PersonRow).where(TemplateRow.id == template_id)
            ).one()
            return _to_template(row, name)

    def update_embeddings(self, items: Iterable[tuple], model_id: str) -> int:
        """Replace many templates' embeddings, all made by ``model_id``, in one transaction
        (a re-embed either finishes or changes nothing). Items are ``(template_id, embedding)``
        or ``(template_id, embedding, face_jpeg)`` when the stored aligned face changes too
        (its geometry follows the model's alignment template). Returns the number updated."""
        prepared = [(int(it[0]), _embedding_bytes(it[1]), it[2] if len(it) > 2 else None) for it in items]
        _check_model_id(model_id)
        with self._writing() as s:
            for tid, (blob, dim), jpeg in prepared:
                values = dict(embedding=blob, dim=dim, model_id=model_id)
                if jpeg is not None:
                    values["face_jpeg"] = jpeg
                res = s.execute(
                    update(TemplateRow)
                    .where(TemplateRow.id == tid)
                    .values(**values),
                    execution_options={"synchronize_session": False},
                )
                if res.rowcount == 0:  # type: ignore[attr-defined]
                    raise StoreError(f"there is no template with id {tid}; nothing was updated")
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
    ) -> Event:
        """Record one decision. It is linked to the person ``decided`` (else ``claimed``)
        names when they are enrolled. ``time`` defaults to now (naive times are UTC)."""
        kind = kind.strip()
        if not kind:
            raise ValueError("an event needs a kind, e.g. 'verify'")
        if decision is not None:
            decision = Decision(decision)
        claimed = (claimed or "").strip() or None
        decided = (decided or "").strip() or None
        row = EventRow(
            time=as_utc(time) if time is not None else utcnow(),
            kind=kind,
            decision=decision.value if decision is not None else None,
            claimed=claimed,
            decided=decided,
            distance=None if distance is None else float(distance),
            threshold=None if threshold is None else float(threshold),
            detail=detail or "",
        )
        with self._writing() as s:
            for name in (decided, claimed):
                person = _find_person(s, name) if name else None
                if person is not None:
                    row.person_id = person.id
                    break
            s.add(row)
            s.flush()
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
                name = person.strip()
                conditions = [EventRow.claimed == name, EventRow.decided == name]
                row = _find_person(s, name) if name else None
                if row is not None:
                    conditions.append(EventRow.person_id == row.id)
                stmt = stmt.where(or_(*conditions))
            return [_to_event(e) for e in s.scalars(stmt).all()]

    # -- state -----------------------------------------------------------------------------

    def generation(self) -> tuple[int, int, int, int, int]:
        """A cheap value that changes whenever people or templates change, in this or any
        other process: compare it with the one an in-memory gallery was built at."""
        stmt = select(
            select(MetaRow.value).where(MetaRow.key == GENERATION_KEY).scalar_subquery(),
            select(func.count(PersonRow.id)).scalar_subquery(),
            select(func.max(PersonRow.id)).scalar_subquery(),
            select(func.count(TemplateRow.id)).scalar_subquery(),
            select(func.max(TemplateRow.id)).scalar_subquery(),
        )
        with self._reading() as s:
            counter, people, max_person, templates, max_template = s.execute(stmt).one()
        return (int(counter or 0), people, max_person or 0, templates, max_template or 0)

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

    def export_gallery(self, path: str | os.PathLike[str]) -> ExportResult:
        """Write everyone enrolled and all their templates (embeddings, model ids, face
        images) to one .zip file at ``path``. The event log is not exported."""
        with self._reading() as s:
            people = s.scalars(select(PersonRow).order_by(PersonRow.id)).all()
            rows = s.execute(select(TemplateRow, PersonRow.name).join(PersonRow).order_by(TemplateRow.id)).all()
            data = archive.Archive(
                people=[archive.ArchivedPerson(p.name, p.created_at) for p in people],
                templates=[
                    archive.ArchivedTemplate(
                        person=name,
                        embedding=_decode(t.embedding, t.dim),
                        model_id=t.model_id,
                        quality=t.quality,
                        created_at=t.created_at,
                        face_jpeg=t.face_jpeg,
                    )
                    for t, name in rows
                ],
            )
        archive.write_archive(path, data)
        return ExportResult(Path(path), len(data.people), len(data.templates))

    def import_gallery(self, path: str | os.PathLike[str], *, on_conflict: OnConflict = "skip") -> ImportResult:
        """Add the people and templates of an export made by :meth:`export_gallery`, in one
        transaction. For a name that is already enrolled, ``on_conflict`` says what to do:
        ``"skip"`` keeps ours, ``"replace"`` replaces our templates with the file's,
        ``"error"`` raises DuplicatePerson and imports nothing."""
        if on_conflict not in _ON_CONFLICT:
            raise ValueError(f"on_conflict must be one of {', '.join(_ON_CONFLICT)}; got {on_conflict!r}")
        data = archive.read_archive(path)
        by_person: dict[str, list[archive.ArchivedTemplate]] = defaultdict(list)
        for t in data.templates:
            _check_model_id(t.model_id)
            by_person[t.person].append(t)
        added = replaced = skipped = written = 0
        with self._writing() as s:
            now = utcnow()
            for p in data.people:
                name = _clean_name(p.name)
                person = _find_person(s, name)
                if person is not None:
                    if on_conflict == "error":
                        raise DuplicatePerson(
                            f"{name!r} is already enrolled, so nothing was imported; "
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
                    replaced += 1
                else:
                    person = PersonRow(name=name, created_at=p.created_at, updated_at=now)
                    s.add(person)
                    s.flush()
                    added += 1
                for t in by_person.get(p.name, []):
                    blob, dim = _embedding_bytes(t.embedding)
                    s.add(
                        TemplateRow(
                            person_id=person.id,
                            embedding=blob,
                            dim=dim,
                            model_id=t.model_id,
                            face_jpeg=t.face_jpeg,
                            quality=t.quality,
                            created_at=t.created_at,
                        )
                    )
                    written += 1
            s.flush()
            _check_dims(s)
            if added or replaced:
                _bump_generation(s)
        return ImportResult(added=added, replaced=replaced, skipped=skipped, templates=written)

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        self._check_open()
        try:
            with self._reader() as s, s.begin():
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


def _clean_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a name must be a str, got {type(name).__name__}")
    name = name.strip()
    if not name:
        raise StoreError("a person's name cannot be empty")
    if len(name) > NAME_LENGTH:
        raise StoreError(f"a person's name can have at most {NAME_LENGTH} characters, got {len(name)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise StoreError(f"a person's name cannot contain control characters: {name!r}")
    return name


def _check_model_id(model_id: str) -> None:
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValueError(f"model_id must be a non-empty str, got {model_id!r}")
    if len(model_id) > MODEL_ID_LENGTH:
        raise ValueError(f"model_id can have at most {MODEL_ID_LENGTH} characters")


def _embedding_bytes(embedding: np.ndarray) -> tuple[bytes, int]:
    """float32 little-endian bytes of a 1-D, finite, non-empty embedding, and its length."""
    arr = np.asarray(embedding)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"an embedding must be a non-empty 1-D vector, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"an embedding must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype("<f4")
    if not np.all(np.isfinite(arr)):
        raise ValueError("an embedding must be finite (it holds NaN or inf)")
    return arr.tobytes(), int(arr.size)


def _template_values(embedding: np.ndarray, model_id: str, quality: float, face_jpeg: bytes) -> dict[str, Any]:
    blob, dim = _embedding_bytes(embedding)
    _check_model_id(model_id)
    quality = float(quality)
    if not math.isfinite(quality):
        raise ValueError(f"quality must be a finite number, got {quality}")
    if not isinstance(face_jpeg, (bytes, bytearray, memoryview)):
        raise TypeError(f"face_jpeg must be bytes, got {type(face_jpeg).__name__}")
    return {"embedding": blob, "dim": dim, "model_id": model_id, "quality": quality, "face_jpeg": bytes(face_jpeg)}


def _decode(blob: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4", count=dim).astype(np.float32)


def _find_person(s: Session, name: str) -> PersonRow | None:
    return s.scalar(select(PersonRow).where(PersonRow.name == name))


def _require_person(s: Session, name: str) -> PersonRow:
    person = _find_person(s, name)
    if person is None:
        folded = name.casefold()
        close = [n for n in s.scalars(select(PersonRow.name)) if n.casefold() == folded]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownPerson(f"{name!r} is not enrolled{hint}; `faceapp people` lists who is")
    return person


def _duplicate(name: str) -> DuplicatePerson:
    return DuplicatePerson(f"{name!r} is already enrolled; choose another name or re-enroll them")


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


def _to_person(row: PersonRow, *, template_count: int) -> Person:
    return Person(id=row.id, name=row.name, created_at=row.created_at, template_count=template_count)


def _to_template(row: TemplateRow, person_name: str) -> Template:
    return Template(
        id=row.id,
        person_id=row.person_id,
        person_name=person_name,
        embedding=_decode(row.embedding, row.dim),
        model_id=row.model_id,
        quality=row.quality,
        created_at=row.created_at,
        face_jpeg=row.face_jpeg,
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
